"""Apache Airflow provider for the CoinStats API.

Importing this package is deliberately cheap: it does no I/O and imports neither
``requests`` nor Airflow, so DAG files that use the provider parse fast.
"""

__version__ = "0.1.0"
