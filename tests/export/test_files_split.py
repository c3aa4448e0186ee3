"""``max_rows_per_file``: big datasets split into numbered parts, for JSONL, CSV and Parquet, on local paths.

Data comes from the sandbox over HTTP; the parts are read back from disk (Parquet with pyarrow)
and compared with the sandbox's own answer flattened by the documented schema (Parquet parts
without ``portfolio_id``, which their folder names; JSONL and CSV rows keep it). The S3 variant
(moto) is in ``test_files_s3.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from airflow_provider_coinstats._compat import AirflowFailException
from airflow_provider_coinstats.export.columns import get_schema
from airflow_provider_coinstats.export.files import PARTITION_COLUMN, part_name
from airflow_provider_coinstats.sandbox import Fault
from tests.export.helpers import as_text, context, expected_rows, file_export, read_file
from tests.helpers import connect_wallet

PARTITION = "20260101T000000"
FORMATS = ["jsonl", "csv", "parquet"]


def read_part(path: Path, file_format: str) -> list[dict[str, Any]]:
    if file_format == "parquet":
        return pq.ParquetFile(path).read().to_pylist()  # the file's own columns, nothing from its folder
    return read_file(path, file_format)


def as_written(row: dict[str, Any], file_format: str) -> dict[str, Any]:
    """What a part holds of ``row``: Parquet leaves out the partition column its folder names."""
    if file_format == "parquet":
        return {name: value for name, value in row.items() if name != PARTITION_COLUMN}
    return as_text(row, file_format)


def folder_of(base: Path, portfolio: str) -> Path:
    return base / "transactions" / f"portfolio_id={portfolio}"


def listing(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder``, hidden ones included, with its content."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_split_dataset_lands_in_numbered_parts_and_a_rerun_replaces_every_part(
    coinstats_conn: Any, portfolio: str, tmp_path: Path, file_format: str
) -> None:
    result = file_export(tmp_path, portfolio, ["transactions"], file_format=file_format, max_rows_per_file=100).execute(
        context()
    )
    folder = folder_of(tmp_path, portfolio)
    names = [f"{PARTITION}-00001.{file_format}", f"{PARTITION}-00002.{file_format}", f"{PARTITION}-00003.{file_format}"]
    assert sorted(p.name for p in folder.iterdir()) == names
    summary = result["datasets"]["transactions"]
    assert summary["rows"] == 250
    assert summary["files"] == [f"file://{folder / name}" for name in names]
    assert summary["location"] == f"file://{folder}/{PARTITION}-*.{file_format}"
    assert summary["bytes"] == sum((folder / name).stat().st_size for name in names)
    parts = [read_part(folder / name, file_format) for name in names]
    assert [len(part) for part in parts] == [100, 100, 50]
    written = [row for part in parts for row in part]
    extracted_at = written[0]["extracted_at"]
    want = [
        as_written(r, file_format) | {"extracted_at": extracted_at} for r in expected_rows("transactions", portfolio)
    ]
    assert written == want  # the parts in number order are the sandbox's rows in order

    # Fewer, bigger parts: the third part of the first run is gone.
    file_export(tmp_path, portfolio, ["transactions"], file_format=file_format, max_rows_per_file=200).execute(
        context()
    )
    assert sorted(p.name for p in folder.iterdir()) == names[:2]
    assert [len(read_part(folder / name, file_format)) for name in names[:2]] == [200, 50]

    # Unsplit: one file, no parts left over; split again: no unsplit file left over.
    again = file_export(tmp_path, portfolio, ["transactions"], file_format=file_format).execute(context())
    assert sorted(p.name for p in folder.iterdir()) == [f"{PARTITION}.{file_format}"]
    assert again["datasets"]["transactions"]["files"] == [again["datasets"]["transactions"]["location"]]
    file_export(tmp_path, portfolio, ["transactions"], file_format=file_format, max_rows_per_file=250).execute(
        context()
    )
    assert sorted(p.name for p in folder.iterdir()) == [f"{PARTITION}-00001.{file_format}"]


def test_other_partitions_and_formats_are_left_alone(coinstats_conn: Any, portfolio: str, tmp_path: Path) -> None:
    folder = folder_of(tmp_path, portfolio)
    folder.mkdir(parents=True)
    others = {
        "20251231T000000-00004.csv": b"another run's part\n",
        "20251231T000000.csv": b"another run\n",
        f"{PARTITION}-00009.jsonl": b"another format\n",
        f"{PARTITION}-notes.csv": b"not a part name\n",
        f"{PARTITION}0-00009.csv": b"a longer partition name\n",
    }
    for name, content in others.items():
        (folder / name).write_bytes(content)
    file_export(tmp_path, portfolio, ["transactions"], file_format="csv", max_rows_per_file=100).execute(context())
    files = listing(folder)
    assert {name: files[name] for name in others} == others
    assert sorted(set(files) - set(others)) == [f"{PARTITION}-0000{n}.csv" for n in (1, 2, 3)]


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_failure_after_parts_were_written_publishes_none_and_keeps_the_previous_files(
    coinstats_conn: Any, portfolio: str, tmp_path: Path, file_format: str
) -> None:
    file_export(tmp_path, portfolio, ["transactions"], file_format=file_format, max_rows_per_file=100).execute(
        context()
    )
    folder = folder_of(tmp_path, portfolio)
    before = listing(folder)
    assert len(before) == 3

    coinstats_conn.state.clear_requests()
    # Page 1 (100 rows) is answered, every later page gets 401: with 40 rows per file, parts 1
    # and 2 are complete and part 3 has 20 rows when the export fails.
    coinstats_conn.state.add_fault(Fault("slow", endpoint="portfolio_transactions", times=1, delay=0))
    coinstats_conn.state.add_fault(Fault("status", endpoint="portfolio_transactions", status=401))
    with pytest.raises(AirflowFailException, match="401"):
        file_export(tmp_path, portfolio, ["transactions"], file_format=file_format, max_rows_per_file=40).execute(
            context()
        )
    pages = coinstats_conn.state.requests(endpoint="portfolio_transactions")
    assert [r.status for r in pages[:2]] == [200, 401]  # it failed after a page's rows were written
    assert listing(folder) == before  # the same files, byte for byte; no new part, no hidden partial file


def test_an_empty_dataset_still_gets_its_first_part(coinstats_conn: Any, tmp_path: Path) -> None:
    portfolio = connect_wallet(coinstats_conn, transactions=0)
    for file_format in FORMATS:
        result = file_export(
            tmp_path, portfolio, ["transactions"], file_format=file_format, max_rows_per_file=100
        ).execute(context())
        path = folder_of(tmp_path, portfolio) / f"{PARTITION}-00001.{file_format}"
        assert result["datasets"]["transactions"]["files"] == [f"file://{path}"]
        assert result["datasets"]["transactions"]["rows"] == 0
        assert read_part(path, file_format) == []
    assert (folder_of(tmp_path, portfolio) / f"{PARTITION}-00001.csv").read_text().startswith("portfolio_id,")
    names = get_schema("transactions").column_names()
    assert pq.read_schema(folder_of(tmp_path, portfolio) / f"{PARTITION}-00001.parquet").names == names[1:]
    # Read as a lake, the empty part still shows every column, portfolio_id from its folder.
    (part,) = (tmp_path / "transactions").rglob("*.parquet")  # the folder also holds this test's JSONL and CSV
    lake = ds.dataset(
        [str(part)], format="parquet", partitioning="hive", partition_base_dir=str(tmp_path / "transactions")
    ).to_table()
    assert (lake.num_rows, sorted(lake.column_names)) == (0, sorted(names))


def test_part_names_have_five_digits_and_grow_past_99999() -> None:
    assert part_name(PARTITION, "csv", None) == f"{PARTITION}.csv"
    assert part_name(PARTITION, "csv", 7) == f"{PARTITION}-00007.csv"
    assert part_name(PARTITION, "parquet", 123456) == f"{PARTITION}-123456.parquet"
