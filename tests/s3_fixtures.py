"""A real S3 API on loopback for the file-export tests: moto's server, reached through an ``aws`` connection.

``moto_s3`` (session) starts ``ThreadedMotoServer`` on 127.0.0.1 at a free port and stops it at
the end; ``s3_conn`` points the Airflow connection ``coinstats_test_s3`` at it (fake keys,
``endpoint_url`` in the extra), so ``ObjectStoragePath("s3://...", conn_id="coinstats_test_s3")``
goes through the Amazon provider and s3fs exactly as in a deployment, without network or AWS
account. ``s3_bucket`` is a fresh, empty bucket per test; tests read what landed with a plain
boto3 client (``moto_s3.client``), independent of the s3fs code under test.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

S3_CONN_ID = "coinstats_test_s3"
_REGION = "us-east-1"
#: moto accepts any key; these are not credentials.
_FAKE_KEYS = {"login": "coinstats-test-key-id", "password": "coinstats-test-secret"}


@dataclass
class MotoS3:
    """The running server: its endpoint and a boto3 client for set-up and read-back."""

    endpoint_url: str
    client: Any

    def keys(self, bucket: str) -> list[str]:
        """Every object key in ``bucket`` (visible objects only)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def pending_uploads(self, bucket: str) -> list[str]:
        """Keys of multipart uploads that were started and neither completed nor aborted."""
        answer = self.client.list_multipart_uploads(Bucket=bucket)
        return [upload["Key"] for upload in answer.get("Uploads", [])]

    def bucket_exists(self, bucket: str) -> bool:
        names = [b["Name"] for b in self.client.list_buckets().get("Buckets", [])]
        return bucket in names


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 server on 127.0.0.1 (a free port), for the whole session."""
    import boto3
    from moto.server import ThreadedMotoServer

    # No AWS profile, config file or instance metadata of the machine may leak into the tests.
    saved = {name: os.environ.get(name) for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")}
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    # werkzeug logs every S3 request at INFO: noise in every failing test's output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=_REGION,
            aws_access_key_id=_FAKE_KEYS["login"],
            aws_secret_access_key=_FAKE_KEYS["password"],
        )
        yield MotoS3(endpoint_url=endpoint, client=client)
        client.close()
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_conn(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> MotoS3:
    """``coinstats_test_s3``: an ``aws`` connection whose S3 endpoint is the moto server."""
    extra = {"endpoint_url": moto_s3.endpoint_url, "region_name": _REGION}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", json.dumps({"conn_type": "aws", **_FAKE_KEYS, "extra": extra})
    )
    return moto_s3


@pytest.fixture
def s3_bucket(s3_conn: MotoS3) -> str:
    """A new, empty bucket (moto keeps buckets for the whole session, so each test gets its own)."""
    name = f"coinstats-{uuid.uuid4().hex[:12]}"
    s3_conn.client.create_bucket(Bucket=name)
    return name
