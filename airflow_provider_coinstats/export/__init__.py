"""Export CoinStats portfolio data to warehouses: flat, documented record schemas per dataset.

:mod:`.schemas` documents the columns and keys of each dataset and gathers the public names of
the modules that turn CoinStats JSON into flat rows; file and SQL destinations build on them. Importing this package is
cheap (standard library only), so operator modules can use it at DAG-parse time.

Example::

    from airflow_provider_coinstats.export import iter_rows, to_jsonable

    rows = iter_rows("coins", hook.get_portfolio_coins(pid), portfolio_id=pid, extracted_at=now)
    lines = [json.dumps(to_jsonable(row)) for row in rows]
"""

from airflow_provider_coinstats.export import schemas
from airflow_provider_coinstats.export.schemas import *  # noqa: F403 - the public names, listed once there

__all__ = schemas.__all__
