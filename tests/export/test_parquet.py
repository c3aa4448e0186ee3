"""Parquet exports: typed by the column catalogue, exact on read-back, flat in memory, refused at parse without pyarrow.

The files leave out their partition column ``portfolio_id``: one file read alone has every other
column, the dataset folder read as a Hive lake has them all (``portfolio_id`` from the path).

Data comes from the sandbox over HTTP and lands in real files, read back with pyarrow. The
memory test feeds the writer rows the sandbox's own generator made and the real flattener
flattened (no HTTP: tracemalloc slows every Python line, and a 100,000-row HTTP export under it
takes minutes); the DAG-parse tests import a DAG file with a real DagBag in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.export import get_schema
from airflow_provider_coinstats.export.columns import AMOUNT_SCALE, DECIMAL_PRECISION, PRICE_SCALE, Column
from airflow_provider_coinstats.export.files import PARTITION_COLUMN, dataset_file, storage_path, write_rows
from airflow_provider_coinstats.export.parquet import INSTALL_COMMAND, arrow_schema, file_schema
from airflow_provider_coinstats.export.rows import iter_rows
from airflow_provider_coinstats.sandbox import data
from tests.export.helpers import ALL_DATASETS, context, expected_rows, file_export
from tests.helpers import connect_wallet

REPO = Path(__file__).resolve().parents[2]
PARTITION = "20260101T000000"
#: The README's reader: the Hive folder's portfolio_id as a string, whatever the ids look like.
STRING_HIVE = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")


def read_parquet(path: Path | str) -> list[dict[str, Any]]:
    return pq.ParquetFile(path).read().to_pylist()  # the file's own columns, nothing from its folder


def in_file(row: dict[str, Any]) -> dict[str, Any]:
    """What a Parquet file holds of ``row``: every column but the partition column its folder names."""
    return {name: value for name, value in row.items() if name != PARTITION_COLUMN}


def by_key(dataset: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` sorted by the dataset's key, portfolio_id as text (pyarrow may give a dictionary or ints)."""
    key = get_schema(dataset).key
    rows = [row | {PARTITION_COLUMN: str(row[PARTITION_COLUMN])} for row in rows]
    return sorted(rows, key=lambda row: [str(row[name]) for name in key])


def sandbox_rows(dataset: str, count: int) -> list[dict[str, Any]]:
    """``count`` flat rows of ``dataset`` from the sandbox's generator and the real flattener (no HTTP)."""
    profile = data.PortfolioProfile(
        seed=1,
        portfolio_id="p-parquet",
        kind="wallet",
        connection_id="ethereum",
        name="Parquet",
        transaction_count=count,
        address="0x" + "1" * 40,
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    if dataset == "coins":
        items = data.portfolio_coins(profile, 1, count, False)
    else:
        items = [
            item for page in range(1, count // 100 + 2) for item in data.transactions_page(profile, "USD", page, 100)
        ]
    return list(islice(iter_rows(dataset, items, portfolio_id="p-parquet", extracted_at=now), count))


# --- types and round trip ------------------------------------------------------------------------------


def test_every_dataset_reads_back_exactly_as_the_sandbox_answered_with_the_schema_types(
    coinstats_conn: Any, portfolio: str, tmp_path: Path
) -> None:
    result = file_export(tmp_path, portfolio, ALL_DATASETS, file_format="parquet").execute(context())
    for dataset in ALL_DATASETS:
        path = tmp_path / dataset / f"portfolio_id={portfolio}" / "20260101T000000.parquet"
        assert result["datasets"][dataset]["location"] == f"file://{path}"
        assert result["datasets"][dataset]["files"] == [f"file://{path}"]
        assert result["datasets"][dataset]["bytes"] == path.stat().st_size
        # Every column but portfolio_id, which the folder names (the folder reads are tested below).
        assert pq.read_schema(path).remove_metadata() == file_schema(dataset, [PARTITION_COLUMN]).remove_metadata()
        assert arrow_schema(dataset).names == [PARTITION_COLUMN, *pq.read_schema(path).names]
        written = read_parquet(path)
        assert len(written) == result["datasets"][dataset]["rows"] > 0, dataset
        extracted_at = written[0]["extracted_at"]
        assert extracted_at.utcoffset().total_seconds() == 0
        # Decimals compare by value (the file pads them to the column's scale), timestamps by instant.
        want = [in_file(row) | {"extracted_at": extracted_at} for row in expected_rows(dataset, portfolio)]
        assert written == want, dataset
        # ... and the values are the same types as the flattened rows', not floats or text.
        for name in pq.read_schema(path).names:
            kinds = {type(row[name]) for row in written if row[name] is not None}
            assert kinds == {type(row[name]) for row in want if row[name] is not None}, (dataset, name)


# --- reading the lake -----------------------------------------------------------------------------------


def test_one_file_reads_with_read_table_and_has_every_column_but_portfolio_id_exactly(
    coinstats_conn: Any, portfolio: str, tmp_path: Path
) -> None:
    """``pq.read_table(<one file>)`` works on every pyarrow; pyarrow 21 also adds portfolio_id from the path."""
    file_export(tmp_path, portfolio, ALL_DATASETS, file_format="parquet").execute(context())
    for dataset in ALL_DATASETS:
        path = tmp_path / dataset / f"{PARTITION_COLUMN}={portfolio}" / f"{PARTITION}.parquet"
        assert PARTITION_COLUMN not in pq.read_schema(path).names  # the file's own columns
        table = pq.read_table(path)
        if PARTITION_COLUMN in table.column_names:  # pyarrow 21 discovers the file's Hive folder, 26 does not
            assert [str(v) for v in table.column(PARTITION_COLUMN).to_pylist()] == [portfolio] * table.num_rows
            table = table.drop_columns([PARTITION_COLUMN])
        written = table.to_pylist()
        assert written, dataset
        want = [
            in_file(row) | {"extracted_at": written[0]["extracted_at"]} for row in expected_rows(dataset, portfolio)
        ]
        assert written == want, dataset


def test_the_dataset_folder_reads_back_every_portfolio_s_rows_with_portfolio_id_from_the_path(
    coinstats_conn: Any, portfolio: str, tmp_path: Path
) -> None:
    """Two portfolios, the bigger split into parts: a lake folder as readers meet it, read three ways."""
    other = connect_wallet(coinstats_conn, transactions=30, address="0x" + "2" * 40)
    assert other != portfolio
    for portfolio_id in (portfolio, other):
        file_export(tmp_path, portfolio_id, ALL_DATASETS, file_format="parquet", max_rows_per_file=100).execute(
            context()
        )
    assert len(list((tmp_path / "transactions" / f"{PARTITION_COLUMN}={portfolio}").iterdir())) == 3
    for dataset in ALL_DATASETS:
        folder = tmp_path / dataset
        readers = {
            "read_table": pq.read_table(folder),
            "dataset": ds.dataset(folder, format="parquet", partitioning="hive").to_table(),
            "README": ds.dataset(folder, format="parquet", partitioning=STRING_HIVE).to_table(),
        }
        assert readers["README"].schema.field(PARTITION_COLUMN).type == pa.string()
        extracted = {  # each export's own extraction time
            str(row[PARTITION_COLUMN]): row["extracted_at"]
            for row in readers["dataset"].select([PARTITION_COLUMN, "extracted_at"]).to_pylist()
        }
        assert set(extracted) == {portfolio, other}, dataset
        want = by_key(
            dataset,
            [
                row | {"extracted_at": extracted[portfolio_id]}
                for portfolio_id in (portfolio, other)
                for row in expected_rows(dataset, portfolio_id)
            ],
        )
        for reader, table in readers.items():
            assert sorted(table.column_names) == sorted(get_schema(dataset).column_names()), (dataset, reader)
            assert by_key(dataset, table.to_pylist()) == want, (dataset, reader)


def test_the_lineage_schema_of_a_parquet_export_still_lists_portfolio_id(
    coinstats_conn: Any, portfolio: str, tmp_path: Path
) -> None:
    """A guard, not a change: the facet describes the dataset (folder and files together), not one file."""
    operator = file_export(tmp_path, portfolio, ["coins"], file_format="parquet")
    operator.execute(context())
    (output,) = operator.get_openlineage_facets_on_complete(None).outputs
    fields = [field.name for field in output.facets["schema"].fields]
    assert fields == get_schema("coins").column_names()
    path = tmp_path / "coins" / f"{PARTITION_COLUMN}={portfolio}" / f"{PARTITION}.parquet"
    assert fields == [PARTITION_COLUMN, *pq.read_schema(path).names]


def test_a_portfolio_id_that_needs_quoting_comes_back_exactly_from_its_folder_name(tmp_path: Path) -> None:
    ids = ["a b/c=d%é?#", "12345"]  # percent-encoded in the path; a numeric one stays text with STRING_HIVE
    for portfolio_id in ids:
        rows = [row | {PARTITION_COLUMN: portfolio_id} for row in sandbox_rows("coins", 3)]
        target = dataset_file(storage_path(str(tmp_path)), "coins", portfolio_id, PARTITION, "parquet")
        assert write_rows(target, "coins", rows, "parquet").rows == 3
    assert sorted(p.name for p in (tmp_path / "coins").iterdir()) == [
        "portfolio_id=12345",
        "portfolio_id=a%20b%2Fc%3Dd%25%C3%A9%3F%23",
    ]
    lake = ds.dataset(tmp_path / "coins", format="parquet", partitioning=STRING_HIVE).to_table()
    assert sorted(lake.column(PARTITION_COLUMN).to_pylist()) == sorted(ids * 3)
    assert sorted(str(v) for v in pq.read_table(tmp_path / "coins").column(PARTITION_COLUMN).to_pylist()) == sorted(
        ids * 3
    )


def test_a_row_of_another_portfolio_is_refused_rather_than_relabelled_by_the_folder(tmp_path: Path) -> None:
    rows = sandbox_rows("coins", 3)  # portfolio_id p-parquet
    target = dataset_file(storage_path(str(tmp_path)), "coins", "p-other", PARTITION, "parquet")
    with pytest.raises(CoinStatsValidationError) as caught:
        write_rows(target, "coins", rows, "parquet")
    assert (
        str(caught.value)
        == "coins.portfolio_id: a row has 'p-parquet', but the file's partition folder holds 'p-other'"
    )
    assert list(target.parent.iterdir()) == []  # nothing published, no partial file left


def test_the_arrow_types_come_from_the_column_catalogue() -> None:
    schema = arrow_schema("coins")
    assert schema.field("price_usd").type == pa.decimal128(DECIMAL_PRECISION, PRICE_SCALE)
    assert schema.field("count").type == pa.decimal128(DECIMAL_PRECISION, AMOUNT_SCALE)
    assert schema.field("extracted_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("rank").type == pa.int64()
    assert schema.field("is_fiat").type == pa.bool_()
    assert schema.field("symbol").type == pa.string()
    assert not schema.field("coin_id").nullable  # key column
    assert schema.field("symbol").nullable
    assert schema.field("symbol").metadata == {
        b"description": get_schema("coins").column("symbol").description.encode()
    }
    for dataset in ALL_DATASETS:
        columns = get_schema(dataset).columns
        assert arrow_schema(dataset).names == [c.name for c in columns]
        for column in columns:
            if column.type == "decimal":
                assert arrow_schema(dataset).field(column.name).type == pa.decimal128(column.precision, column.scale)
        assert file_schema(dataset, ["portfolio_id"]) == arrow_schema(dataset).remove(0)
    with pytest.raises(ValueError, match="dataset coins has no column 'wallet' to partition by"):
        file_schema("coins", ["wallet"])


def test_decimal_columns_declare_a_precision_and_scale_and_only_they_do() -> None:
    assert (Column("x", "decimal").precision, Column("x", "decimal").scale) == (38, 18)
    assert get_schema("chart").column("value_btc").scale == PRICE_SCALE
    with pytest.raises(ValueError, match="only decimal columns"):
        Column("x", "string", scale=2)
    with pytest.raises(ValueError, match="scale <= precision <= 38"):
        Column("x", "decimal", precision=39)


def test_more_fractional_digits_than_the_scale_round_half_even_and_too_many_integer_digits_fail(
    tmp_path: Path,
) -> None:
    row = sandbox_rows("coins", 1)[0]
    widest = Decimal("-" + "9" * 20 + "." + "9" * 18)  # 38 digits: exactly what decimal128(38, 18) holds
    fine = row | {"price_usd": Decimal("0.000000000012345678901234565"), "count": Decimal("-2.5"), "value_usd": widest}
    path = tmp_path / "coins.parquet"
    with path.open("wb") as handle:
        from airflow_provider_coinstats.export.parquet import write_parquet

        # The third row sends value_usd through the rounding path too, with the widest value in it.
        assert write_parquet(handle, "coins", [row, fine, row | {"value_usd": Decimal("1.0000000000000000005")}]) == 3
    back = read_parquet(path)
    assert back[0] == row  # unchanged where the value fits
    # 27 fractional digits -> 24, the tie ...565 rounds to the even ...56
    assert back[1]["price_usd"] == Decimal("0.000000000012345678901235")
    assert back[1]["count"] == Decimal("-2.5")
    assert back[1]["value_usd"] == widest
    assert back[2]["value_usd"] == Decimal("1.000000000000000000")  # 19th digit 5, tie to even

    for too_big in (Decimal("1" + "0" * 20), Decimal("9" * 20 + "." + "9" * 19)):  # 21 integer digits (once rounded)
        with (tmp_path / "big.parquet").open("wb") as handle, pytest.raises(CoinStatsValidationError) as caught:
            write_parquet(handle, "coins", [row, row | {"value_usd": too_big}])
        assert str(caught.value) == (
            f"coins.value_usd: {too_big} has more than 20 integer digits, "
            "the most Parquet's decimal128(38, 18) of this column holds"
        )


# --- memory ---------------------------------------------------------------------------------------------


def peaks(target_dir: Path, pool: list[dict[str, Any]], count: int) -> tuple[int, int]:
    """Peak Python heap (tracemalloc) and peak Arrow memory while ``count`` rows are written to Parquet.

    Rows are fresh dicts cycling over ``pool``; Arrow's allocator is outside tracemalloc's view,
    so its allocated bytes are sampled between rows.
    """
    arrow_peak = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal arrow_peak
        for number, row in enumerate(islice(cycle(pool), count)):
            if number % 250 == 0:
                arrow_peak = max(arrow_peak, pa.total_allocated_bytes())
            yield dict(row)

    target = dataset_file(storage_path(str(target_dir)), "transactions", "p-parquet", f"n{count}", "parquet")
    tracemalloc.start()
    try:
        written = write_rows(target, "transactions", rows(), "parquet")
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert written.rows == count
    assert pq.ParquetFile(written.files[0][len("file://") :]).metadata.num_rows == count
    return python_peak, arrow_peak


def test_memory_stays_flat_from_20k_to_100k_rows(tmp_path: Path) -> None:
    pool = sandbox_rows("transactions", 1000)
    peaks(tmp_path, pool, 2_000)  # warm-up: pyarrow's lazy imports and caches are not the writer's
    python_20k, arrow_20k = peaks(tmp_path, pool, 20_000)
    python_100k, arrow_100k = peaks(tmp_path, pool, 100_000)
    assert python_100k < 1.5 * python_20k, (python_20k, python_100k)
    assert arrow_100k < 1.5 * arrow_20k, (arrow_20k, arrow_100k)
    assert arrow_20k > 0  # the sampling saw the writer's Arrow buffers


# --- DAG parse ------------------------------------------------------------------------------------------

PARSE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    if sys.argv[2] == "block":
        sys.modules["pyarrow"] = None  # what an environment without the [parquet] extra looks like to imports
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])  # examples are off: AIRFLOW__CORE__LOAD_EXAMPLES in conftest
    print(json.dumps({
        "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dags": sorted(bag.dag_ids),
        "pyarrow_imported": sys.modules.get("pyarrow") is not None,
    }))
    """
)

DAG_FILE = textwrap.dedent(
    """
    from datetime import datetime
    from airflow.sdk import DAG
    from airflow_provider_coinstats.transfers.coinstats_to_file import CoinStatsToFileOperator

    with DAG(dag_id="parquet_parse", schedule=None, start_date=datetime(2026, 1, 1)):
        CoinStatsToFileOperator(
            task_id="lake", portfolio_id="p1", datasets=["coins"], path="/tmp/lake", file_format="parquet"
        )
    """
)


def parse_in_fresh_interpreter(tmp_path: Path, pyarrow: str) -> dict[str, Any]:
    dag_file = tmp_path / "parquet_parse.py"
    dag_file.write_text(DAG_FILE)
    answer = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(dag_file), pyarrow],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=os.environ.copy(),  # the suite's AIRFLOW_HOME and config
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_parquet_without_pyarrow_fails_at_dag_parse_with_the_install_command(tmp_path: Path) -> None:
    """pyarrow is installed here, so the child interpreter makes it unimportable: ``sys.modules["pyarrow"] = None``."""
    parsed = parse_in_fresh_interpreter(tmp_path, "block")
    assert parsed["dags"] == []
    (message,) = parsed["errors"].values()
    assert "file_format: parquet needs pyarrow, which is not installed" in message
    assert INSTALL_COMMAND in message
    assert INSTALL_COMMAND == "pip install 'airflow-provider-coinstats[parquet]'"


def test_parquet_dag_parses_without_importing_pyarrow(tmp_path: Path) -> None:
    parsed = parse_in_fresh_interpreter(tmp_path, "installed")
    assert parsed == {"errors": {}, "dags": ["parquet_parse"], "pyarrow_imported": False}


@pytest.mark.parametrize("value", [0, -5, True, "100", 2.5])
def test_a_bad_max_rows_per_file_is_refused_when_the_dag_is_parsed(tmp_path: Path, value: Any) -> None:
    with pytest.raises(CoinStatsValidationError, match=r"^max_rows_per_file: must be a positive whole number"):
        file_export(tmp_path, "p1", ["coins"], max_rows_per_file=value)


def test_an_unknown_format_names_parquet_among_the_choices(tmp_path: Path) -> None:
    with pytest.raises(CoinStatsValidationError, match=r"^file_format: must be one of jsonl, csv, parquet; got 'xlsx'"):
        file_export(tmp_path, "p1", ["coins"], file_format="xlsx")
