"""End-to-end tests: a real multi-process Airflow deployment on loopback (``make e2e``)."""
