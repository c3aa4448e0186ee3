"""A split Parquet export inside a real DAG run: the task's XCom lists every part, the Asset event covers them all.

``dag.test()`` of ``tests/dags/coinstats_file_split_dags.py`` against the sandbox over HTTP;
witnesses are the files on disk, the XCom and the asset events in the metadata DB.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from airflow_provider_coinstats.export.assets import file_asset
from tests.helpers import airflow_home, connect_wallet
from tests.transfers.test_export_dags import asset_events


def test_one_asset_event_per_dataset_covers_all_parts_and_the_xcom_lists_them(
    coinstats_conn: Any, run_dag: Any
) -> None:
    lake = airflow_home() / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    portfolio = connect_wallet(coinstats_conn, transactions=250)
    result = run_dag("cs_test_parquet_parts", conf={"portfolio_id": portfolio})
    assert result.state == "success"

    summary = result.xcom("lake")["datasets"]
    folder = lake / "transactions" / f"portfolio_id={portfolio}"
    parts = sorted(folder.iterdir())
    stem = parts[0].name.removesuffix("-00001.parquet")  # the run's partition (its logical date)
    assert [p.name for p in parts] == [f"{stem}-0000{n}.parquet" for n in (1, 2, 3)]
    assert summary["transactions"]["files"] == [f"file://{p}" for p in parts]
    assert summary["transactions"]["bytes"] == sum(p.stat().st_size for p in parts)
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in parts) == summary["transactions"]["rows"] == 250
    # The dataset folder reads as one Hive lake: portfolio_id comes from the folder, not the files.
    assert "portfolio_id" not in pq.read_schema(parts[0]).names
    table = pq.read_table(lake / "transactions")
    assert [str(v) for v in table.column("portfolio_id").to_pylist()] == [portfolio] * 250
    assert len(summary["value"]["files"]) == 1  # one row: one part

    for dataset in ("transactions", "value"):
        (event,) = asset_events(file_asset(str(lake), dataset).uri, dag_id="cs_test_parquet_parts")
        assert event["portfolio_id"] == portfolio
        assert event["rows"] == summary[dataset]["rows"]
        assert event["location"] == summary[dataset]["location"]
        pattern = event["location"].removeprefix("file://")
        assert sorted(Path(pattern).parent.glob(Path(pattern).name)) == sorted(
            Path(f.removeprefix("file://")) for f in summary[dataset]["files"]
        )
