"""File exports to ``s3://`` against a real S3 API on loopback (moto's server, ``tests/s3_fixtures.py``).

The operator goes through the Amazon provider's ``s3://`` ObjectStoragePath and s3fs, as in a
deployment; data comes from the CoinStats sandbox over HTTP. What landed is read back with a
separate boto3 client. Requests the export's s3fs client sends are observed with a botocore
``before-parameter-build`` event handler (observing only, except in the cleanup-failure test, which makes
exactly the cleanup requests fail; see there).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from airflow_provider_coinstats._compat import AirflowFailException
from airflow_provider_coinstats.exceptions import CoinStatsDestinationError
from airflow_provider_coinstats.export import get_schema
from airflow_provider_coinstats.export.files import storage_path
from airflow_provider_coinstats.sandbox import Fault
from tests.export.helpers import as_text, context, expected_rows, file_export
from tests.s3_fixtures import S3_CONN_ID, MotoS3

PARTITION = "20260101T000000"
#: S3 operations that create or change an object (or start to).
WRITES = frozenset({"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "CopyObject"})


class InjectedCleanupFailure(Exception):
    """Raised instead of sending a cleanup request (see the cleanup test)."""


def keys_of(params: dict[str, Any]) -> list[str]:
    """The object keys an S3 request names: ``Key``, or each key of a DeleteObjects batch."""
    if "Key" in params:
        return [params["Key"]]
    return [item["Key"] for item in params.get("Delete", {}).get("Objects", [])]


@contextmanager
def s3_requests(bucket: str, fail: Callable[[str, dict[str, Any]], bool] | None = None) -> Iterator[list[Any]]:
    """Record ``(operation, key)`` of every request the export's s3fs client sends to moto.

    ``before-parameter-build`` sees the API parameters (Bucket, Key, ...) before the request is
    built. The handler sits on the client the operator uses: Airflow caches one filesystem per
    protocol and connection id. ``fail(operation, params)`` returning true makes that one
    request raise :class:`InjectedCleanupFailure` before it is sent.
    """
    events = storage_path(f"s3://{bucket}", S3_CONN_ID).fs.s3.meta.events
    calls: list[tuple[str, str]] = []

    def before_build(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, ",".join(keys_of(params))))
        if fail is not None and fail(model.name, params):
            raise InjectedCleanupFailure(f"injected failure of {model.name}")

    events.register("before-parameter-build.s3", before_build, unique_id="coinstats-test-recorder")
    try:
        yield calls
    finally:
        events.unregister("before-parameter-build.s3", unique_id="coinstats-test-recorder")


def rows_of(data: bytes, file_format: str) -> list[dict[str, Any]]:
    text = data.decode("utf-8")
    if file_format == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    return list(csv.DictReader(io.StringIO(text, newline="")))


def s3_export(bucket: str, portfolio_id: str, datasets: list[str], **kwargs: Any) -> Any:
    return file_export(f"s3://{bucket}/exports", portfolio_id, datasets, storage_conn_id=S3_CONN_ID, **kwargs)


def not_probe(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The export's own requests, without ``ensure_writable``'s probe object."""
    return [(op, key) for op, key in calls if "/.coinstats-write-check-" not in key]


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_files_land_on_s3_as_the_sandbox_answered_and_a_rerun_replaces_them_by_commit(
    wallet: Callable[..., str], s3_bucket: str, s3_conn: MotoS3, file_format: str
) -> None:
    portfolio = wallet()
    datasets = ["coins", "value", "transactions"]
    keys = [f"exports/{d}/portfolio_id={portfolio}/{PARTITION}.{file_format}" for d in datasets]
    result = s3_export(s3_bucket, portfolio, datasets, file_format=file_format).execute(context())

    assert s3_conn.keys(s3_bucket) == sorted(keys)
    for dataset, key in zip(datasets, keys, strict=True):
        # ObjectStoragePath's text names the connection id (not a secret) as the URI's user part.
        assert result["datasets"][dataset]["location"] == f"s3://{S3_CONN_ID}@{s3_bucket}/{key}"
        written = rows_of(s3_conn.read(s3_bucket, key), file_format)
        assert len(written) == result["datasets"][dataset]["rows"] > 0
        assert list(written[0]) == get_schema(dataset).column_names()
        extracted_at = written[0]["extracted_at"]
        want = [as_text(r, file_format) | {"extracted_at": extracted_at} for r in expected_rows(dataset, portfolio)]
        assert written == want, dataset

    with s3_requests(s3_bucket) as calls:
        again = s3_export(s3_bucket, portfolio, datasets, file_format=file_format).execute(context())
    assert s3_conn.keys(s3_bucket) == sorted(keys)  # replaced: still one object per partition
    assert s3_conn.pending_uploads(s3_bucket) == []
    assert [again["datasets"][d]["rows"] for d in datasets] == [result["datasets"][d]["rows"] for d in datasets]
    # Each file is published by the filesystem's commit (a completed multipart upload of the final
    # key): no temporary object is written, copied or deleted.
    exported = not_probe(calls)
    assert {key for op, key in exported if op in WRITES} == set(keys)
    assert [key for op, key in exported if op == "CompleteMultipartUpload"] == keys
    assert not [op for op, _ in exported if op in {"PutObject", "CopyObject", "DeleteObject", "DeleteObjects"}]


def test_a_missing_bucket_is_refused_by_name_before_any_paid_request_and_is_not_created(
    coinstats_conn: Any, wallet: Callable[..., str], s3_conn: MotoS3
) -> None:
    portfolio = wallet()
    missing = "coinstats-never-created"
    with pytest.raises(
        CoinStatsDestinationError, match=rf"^path: bucket '{missing}' of s3://\S*{missing}/exports does"
    ):
        s3_export(missing, portfolio, ["coins", "transactions"]).execute(context())
    assert coinstats_conn.state.requests() == []  # not one CoinStats request, paid or free
    assert not s3_conn.bucket_exists(missing)


def fail_on_page_2_of_transactions(sandbox: Any) -> None:
    """Page 1 is answered normally (a zero-delay ``slow`` fault used once), every later page gets 401."""
    sandbox.state.add_fault(Fault("slow", endpoint="portfolio_transactions", times=1, delay=0))
    sandbox.state.add_fault(Fault("status", endpoint="portfolio_transactions", status=401))


def test_a_failure_mid_write_keeps_the_previous_object_and_leaves_no_partial_or_pending_upload(
    coinstats_conn: Any, wallet: Callable[..., str], s3_bucket: str, s3_conn: MotoS3
) -> None:
    portfolio = wallet()
    key = f"exports/transactions/portfolio_id={portfolio}/{PARTITION}.jsonl"
    s3_export(s3_bucket, portfolio, ["transactions"]).execute(context())
    before = s3_conn.read(s3_bucket, key)

    coinstats_conn.state.clear_requests()
    fail_on_page_2_of_transactions(coinstats_conn)
    with s3_requests(s3_bucket) as calls, pytest.raises(AirflowFailException, match="401"):
        s3_export(s3_bucket, portfolio, ["transactions"]).execute(context())

    pages = coinstats_conn.state.requests(endpoint="portfolio_transactions")
    assert [r.status for r in pages[:2]] == [200, 401]  # it failed mid-export, after a page was read
    assert s3_conn.keys(s3_bucket) == [key]
    assert s3_conn.read(s3_bucket, key) == before
    assert s3_conn.pending_uploads(s3_bucket) == []
    # The rows already written went into an upload of the final key that was aborted, never published.
    exported = not_probe(calls)
    assert {k for op, k in exported if op in WRITES} == {key}
    assert [op for op, _ in exported if op in {"CompleteMultipartUpload", "AbortMultipartUpload"}] == [
        "AbortMultipartUpload"
    ]


def test_a_failing_cleanup_does_not_hide_the_original_error(
    coinstats_conn: Any,
    wallet: Callable[..., str],
    s3_bucket: str,
    s3_conn: MotoS3,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The export fails on page 2 (401) and then its cleanup fails too.

    Injected failure (the one thing not real here): the export client's requests that throw a
    write of this dataset away (AbortMultipartUpload, DeleteObject(s) of a key below the
    dataset's folder) raise before they are sent. Every other request reaches moto; the probe
    object of ``ensure_writable`` is outside that folder and is deleted normally.
    """
    portfolio = wallet()
    folder = "exports/transactions/"

    def is_cleanup(operation: str, params: dict[str, Any]) -> bool:
        removes = operation in {"AbortMultipartUpload", "DeleteObject", "DeleteObjects"}
        return removes and any(key.startswith(folder) for key in keys_of(params))

    fail_on_page_2_of_transactions(coinstats_conn)
    caplog.set_level(logging.WARNING, logger="airflow_provider_coinstats.export.files")
    with s3_requests(s3_bucket, fail=is_cleanup) as calls, pytest.raises(AirflowFailException, match="401") as caught:
        s3_export(s3_bucket, portfolio, ["transactions"]).execute(context())

    assert "injected" not in str(caught.value)
    assert any(is_cleanup(op, {"Key": key}) for op, key in calls)  # a cleanup was attempted and failed
    warnings = [r for r in caplog.records if r.name == "airflow_provider_coinstats.export.files"]
    assert warnings, "the cleanup failure is logged"
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert any(isinstance(r.exc_info[1], InjectedCleanupFailure) for r in warnings if r.exc_info)
    # Nothing was published: the failed run left no object (the aborted upload is pending only
    # because its abort was made to fail).
    assert s3_conn.keys(s3_bucket) == []


# --- split into parts (max_rows_per_file) ---------------------------------------------------------------


def part_keys(portfolio: str, file_format: str, count: int) -> list[str]:
    folder = f"exports/transactions/portfolio_id={portfolio}"
    return [f"{folder}/{PARTITION}-{number:05d}.{file_format}" for number in range(1, count + 1)]


def parquet_rows(data: bytes) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pylist()  # type: ignore[no-any-return]


def test_parquet_parts_land_on_s3_published_together_and_a_rerun_deletes_the_parts_it_did_not_write(
    wallet: Callable[..., str], s3_bucket: str, s3_conn: MotoS3
) -> None:
    portfolio = wallet()
    keys = part_keys(portfolio, "parquet", 3)
    with s3_requests(s3_bucket) as calls:
        result = s3_export(
            s3_bucket, portfolio, ["transactions"], file_format="parquet", max_rows_per_file=100
        ).execute(context())
    assert s3_conn.keys(s3_bucket) == keys
    summary = result["datasets"]["transactions"]
    assert summary["files"] == [f"s3://{S3_CONN_ID}@{s3_bucket}/{key}" for key in keys]
    assert summary["bytes"] == sum(len(s3_conn.read(s3_bucket, key)) for key in keys)
    parts = [parquet_rows(s3_conn.read(s3_bucket, key)) for key in keys]
    assert [len(part) for part in parts] == [100, 100, 50]
    written = [row for part in parts for row in part]
    # Parquet leaves out portfolio_id: the parts' folder (portfolio_id=<id>/) holds it.
    want = [
        {k: v for k, v in r.items() if k != "portfolio_id"} | {"extracted_at": written[0]["extracted_at"]}
        for r in expected_rows("transactions", portfolio)
    ]
    assert written == want
    # Every part was uploaded first and completed only after the last one was written.
    exported = [(op, key) for op, key in not_probe(calls) if op in WRITES]
    completes = [index for index, (op, _) in enumerate(exported) if op == "CompleteMultipartUpload"]
    assert [exported[index][1] for index in completes] == keys
    assert min(completes) > max(index for index, (op, _) in enumerate(exported) if op == "UploadPart")

    with s3_requests(s3_bucket) as calls:
        s3_export(s3_bucket, portfolio, ["transactions"], file_format="parquet", max_rows_per_file=200).execute(
            context()
        )
    assert s3_conn.keys(s3_bucket) == keys[:2]
    assert [len(parquet_rows(s3_conn.read(s3_bucket, key))) for key in keys[:2]] == [200, 50]
    deletes = [key for op, key in not_probe(calls) if op in {"DeleteObject", "DeleteObjects"}]
    assert deletes == [keys[2]]  # the stale part, nothing else
    assert s3_conn.pending_uploads(s3_bucket) == []


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_a_failure_after_parts_were_uploaded_publishes_none_and_aborts_every_upload(
    coinstats_conn: Any, wallet: Callable[..., str], s3_bucket: str, s3_conn: MotoS3, file_format: str
) -> None:
    portfolio = wallet()
    s3_export(s3_bucket, portfolio, ["transactions"], file_format=file_format, max_rows_per_file=100).execute(context())
    keys = part_keys(portfolio, file_format, 3)
    before = {key: s3_conn.read(s3_bucket, key) for key in keys}

    coinstats_conn.state.clear_requests()
    fail_on_page_2_of_transactions(coinstats_conn)
    # 40 rows per file: parts 1 and 2 are uploaded whole from page 1, part 3 is being written when page 2 fails.
    with s3_requests(s3_bucket) as calls, pytest.raises(AirflowFailException, match="401"):
        s3_export(s3_bucket, portfolio, ["transactions"], file_format=file_format, max_rows_per_file=40).execute(
            context()
        )
    assert s3_conn.keys(s3_bucket) == keys
    assert {key: s3_conn.read(s3_bucket, key) for key in keys} == before
    assert s3_conn.pending_uploads(s3_bucket) == []
    exported = not_probe(calls)
    # Parts 1 and 2 were uploaded whole; part 3's rows may still have been in the write buffer.
    started = sorted(key for op, key in exported if op == "CreateMultipartUpload")
    assert started[:2] == keys[:2]
    assert {key for op, key in exported if op == "UploadPart"} >= set(keys[:2])
    assert sorted(key for op, key in exported if op == "AbortMultipartUpload") == started
    assert [op for op, _ in exported if op in {"CompleteMultipartUpload", "PutObject", "DeleteObject"}] == []
