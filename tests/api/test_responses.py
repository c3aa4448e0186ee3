"""The classifier: every status to its typed error, Retry-After parsing, secret scrubbing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from airflow_provider_coinstats import exceptions as exc
from airflow_provider_coinstats.api import builders
from airflow_provider_coinstats.api.responses import classify_response, parse_retry_after

REQ = builders.portfolio_coins("p1")


def envelope(status: int, message: str = "boom", request_id: str = "rid-1") -> bytes:
    return json.dumps({"statusCode": status, "message": message, "requestId": request_id, "path": "/x"}).encode()


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (400, exc.CoinStatsBadRequestError, False),
        (401, exc.CoinStatsUnauthorizedError, False),
        (403, exc.CoinStatsForbiddenError, False),
        (404, exc.CoinStatsNotFoundError, False),
        (406, exc.CoinStatsCreditsExhaustedError, False),
        (409, exc.CoinStatsNotSyncedError, False),
        (429, exc.CoinStatsRateLimitedError, True),
        (500, exc.CoinStatsServerError, True),
        (502, exc.CoinStatsServerError, True),
        (503, exc.CoinStatsServerError, True),
        (504, exc.CoinStatsServerError, True),
        (501, exc.CoinStatsAPIError, False),
        (418, exc.CoinStatsAPIError, False),
    ],
)
def test_status_to_error(status: int, error: type[exc.CoinStatsAPIError], retryable: bool) -> None:
    with pytest.raises(error) as info:
        classify_response(REQ, status, {}, envelope(status))
    err = info.value
    assert type(err) is error
    assert (err.status_code, err.message, err.request_id, err.path) == (
        status,
        "boom",
        "rid-1",
        "/portfolio/coins",
    )
    assert err.retryable is retryable
    assert "GET /portfolio/coins" in str(err) and "requestId=rid-1" in str(err)


def test_success_decodes_json() -> None:
    assert classify_response(REQ, 200, {}, b'{"result": [1]}') == {"result": [1]}


@pytest.mark.parametrize("body", [b'{"result": [1, 2', b"<html>ok</html>", b""])
def test_incomplete_2xx_body_is_retryable(body: bytes) -> None:
    with pytest.raises(exc.CoinStatsInvalidResponseError) as info:
        classify_response(REQ, 200, {}, body)
    assert info.value.retryable


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "non-JSON body: <html><body>502 Bad Gateway"),
        (b"", "empty body"),
        (b'{"statusCode": 503, "message": "Service Unavailable. Please Contact Support"}', "Please Contact"),
    ],
)
def test_non_envelope_error_bodies(body: bytes, fragment: str) -> None:
    with pytest.raises(exc.CoinStatsServerError) as info:
        classify_response(REQ, 502, {}, body)
    assert fragment in str(info.value)
    assert info.value.request_id is None


def test_secrets_are_scrubbed_from_messages() -> None:
    req = builders.connect_exchange("binance", {"apiKey": "EXKEY-123", "apiSecret": "EXSECRET-456"})
    body = envelope(400, "bad creds EXKEY-123 / EXSECRET-456 with API-KEY-789")
    with pytest.raises(exc.CoinStatsBadRequestError) as info:
        classify_response(req, 400, {}, body, secrets=("API-KEY-789",))
    text = str(info.value)
    assert "EXKEY-123" not in text and "EXSECRET-456" not in text and "API-KEY-789" not in text
    assert text.count("***") == 3


def test_retry_after_parsing() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(date, now=now.timestamp()) == pytest.approx(30.0)


def test_retry_after_carried_on_429() -> None:
    with pytest.raises(exc.CoinStatsRateLimitedError) as info:
        classify_response(REQ, 429, {"retry-after": "3"}, envelope(429))
    assert info.value.retry_after == 3.0


def test_secret_straddling_the_excerpt_cut_is_scrubbed_first() -> None:
    # The non-JSON excerpt is 200 characters; this secret starts at 190 and ends at 222, so
    # cutting before scrubbing would quote its first 10 characters.
    secret = "SECRETPREFIX-0123456789abcdefghij"
    req = builders.connect_exchange("binance", {"apiKey": secret, "apiSecret": "other-secret"})
    body = ("<html>" + "x" * 184 + secret + " and more proxy text" * 20 + "</html>").encode()
    assert body.decode().index(secret) == 190
    with pytest.raises(exc.CoinStatsServerError) as info:
        classify_response(req, 502, {}, body)
    text = str(info.value)
    assert "non-JSON body" in text
    assert "***" in text
    assert secret[:6] not in text


def test_secret_in_a_redirect_location_is_never_quoted() -> None:
    with pytest.raises(exc.CoinStatsRedirectError) as info:
        classify_response(REQ, 302, {"Location": "https://API-KEY-789.example/x?k=API-KEY-789"}, b"", ("API-KEY-789",))
    assert "API-KEY-789" not in str(info.value)
    assert info.value.location == "https://***.example"
