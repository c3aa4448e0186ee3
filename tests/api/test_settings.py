"""Connection parsing: base URL rules, extras, and the http-only-on-loopback guard."""

from __future__ import annotations

import pytest

from airflow_provider_coinstats.api.catalog import BASE_URL
from airflow_provider_coinstats.api.settings import ClientSettings, resolve_base_url
from airflow_provider_coinstats.exceptions import CoinStatsConfigError


@pytest.mark.parametrize(
    ("host", "kwargs", "expected"),
    [
        (None, {}, BASE_URL),
        ("", {}, BASE_URL),
        ("http://127.0.0.1:8765", {}, "http://127.0.0.1:8765"),
        ("http://localhost:8765/", {}, "http://localhost:8765"),
        ("http://[::1]:9000", {}, "http://[::1]:9000"),
        ("api.example.com", {}, "https://api.example.com"),
        ("api.example.com", {"port": 8443}, "https://api.example.com:8443"),
        ("127.0.0.1", {"schema": "http", "port": 8765}, "http://127.0.0.1:8765"),
        ("https://proxy.example.com/coinstats", {}, "https://proxy.example.com/coinstats"),
    ],
)
def test_base_url(host: str | None, kwargs: dict[str, object], expected: str) -> None:
    assert resolve_base_url(host, **kwargs) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host", ["http://api.example.com", "http://10.0.0.5:8080", "example.com", "http://192.168.1.2"]
)
def test_plain_http_refused_off_loopback(host: str) -> None:
    if "://" not in host:  # a bare name with schema=http must be refused too
        with pytest.raises(CoinStatsConfigError, match="loopback"):
            resolve_base_url(host, schema="http")
        return
    with pytest.raises(CoinStatsConfigError, match="loopback"):
        resolve_base_url(host)


@pytest.mark.parametrize("host", ["ftp://example.com", "https://user:pw@example.com", "https://x.com/?k=v"])
def test_bad_hosts(host: str) -> None:
    with pytest.raises(CoinStatsConfigError):
        resolve_base_url(host)


def test_settings_from_connection_defaults_and_extras() -> None:
    s = ClientSettings.from_connection(host=None, password=" key-123 ", extra={})
    assert (s.base_url, s.api_key, s.auth_type, s.timeout, s.retry.max_attempts) == (
        BASE_URL,
        "key-123",
        "x-api-key",
        30.0,
        5,
    )
    assert s.auth_headers() == {"X-API-KEY": "key-123"}
    s = ClientSettings.from_connection(
        host="http://127.0.0.1:1",
        password="k",
        extra={"timeout": "7", "max_attempts": 2, "auth_type": "Bearer"},
    )
    assert (s.timeout, s.retry.max_attempts, s.auth_headers()) == (7.0, 2, {"Authorization": "Bearer k"})


def test_settings_repr_hides_key() -> None:
    s = ClientSettings.from_connection(host=None, password="very-secret-key", extra={})
    assert "very-secret-key" not in repr(s)


@pytest.mark.parametrize(
    ("password", "extra", "match"),
    [
        ("", {}, "API key"),
        ("   ", {}, "API key"),
        ("k", {"timeout": "soon"}, "'timeout' must be a number"),
        ("k", {"max_attempts": 0}, "'max_attempts' must be >= 1"),
        ("k", {"auth_type": "basic"}, "auth_type"),
    ],
)
def test_settings_errors_name_the_field(password: str, extra: dict[str, object], match: str) -> None:
    with pytest.raises(CoinStatsConfigError, match=match):
        ClientSettings.from_connection(host=None, password=password, extra=extra, conn_id="my_conn")
