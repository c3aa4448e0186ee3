"""The sandbox's admin API refuses a non-loopback Host (DNS rebinding) and non-JSON bodies (CSRF).

A page on another site can make a browser send requests to 127.0.0.1: with a rebound DNS name
(its own name in ``Host``) or as a cross-site form post / ``no-cors`` fetch (a body that is not
``application/json``). Both are refused before the handler runs, so nothing changes.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_coinstats.sandbox.app import loopback_host_header

FAULT = {"kind": "status", "status": 503}


def admin(sandbox: Any, path: str) -> str:
    return f"{sandbox.url}/_sandbox/{path}"


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "10.0.0.1", "[::2]:80"]
)
def test_non_loopback_host_is_refused(sandbox: Any, host: str) -> None:
    headers = {"Host": host}
    r = requests.post(admin(sandbox, "faults"), json=FAULT, headers=headers)
    assert r.status_code == 403
    assert "loopback" in r.json()["message"]
    assert sandbox.state.faults() == []
    r = requests.get(admin(sandbox, "requests"), headers=headers)
    assert r.status_code == 403
    r = requests.post(admin(sandbox, "reset"), json={}, headers=headers)
    assert r.status_code == 403


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:{port}", "127.9.9.9:1", "localhost:{port}", "LOCALHOST", "[::1]:{port}"]
)
def test_loopback_host_is_accepted(sandbox: Any, host: str) -> None:
    r = requests.post(admin(sandbox, "faults"), json=FAULT, headers={"Host": host.format(port=sandbox.port)})
    assert r.status_code == 200, r.text
    assert len(sandbox.state.faults()) == 1


@pytest.mark.parametrize(
    "send",
    [
        lambda url: requests.post(url, data=b'{"kind": "status", "status": 503}'),  # no Content-Type
        lambda url: requests.post(url, data=b'{"kind": "status"}', headers={"Content-Type": "text/plain"}),
        lambda url: requests.post(url, data={"kind": "status"}),  # an HTML form post
        lambda url: requests.post(url, files={"kind": ("f", b"status")}),  # multipart form
    ],
)
def test_non_json_body_is_refused(sandbox: Any, send: Any) -> None:
    r = send(admin(sandbox, "faults"))
    assert r.status_code == 415
    assert "application/json" in r.json()["message"]
    assert sandbox.state.faults() == []


def test_bodiless_post_needs_json_too(sandbox: Any, http: requests.Session) -> None:
    # A cross-site POST needs no body to reset the sandbox; it cannot send application/json.
    http.get(f"{sandbox.url}/usage/credits")
    r = requests.post(admin(sandbox, "reset"))
    assert r.status_code == 415
    assert len(sandbox.state.requests()) == 1  # not reset
    r = requests.post(admin(sandbox, "reset"), headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200
    assert sandbox.state.requests() == []


def test_reads_and_deletes_without_body_need_no_content_type(sandbox: Any) -> None:
    assert requests.get(admin(sandbox, "requests")).status_code == 200
    assert requests.delete(admin(sandbox, "faults")).status_code == 200


def test_api_routes_are_not_affected(sandbox: Any) -> None:
    # The CoinStats API itself keeps answering any client; only the admin API is guarded.
    r = requests.get(f"{sandbox.url}/usage/credits", headers={"X-API-KEY": sandbox.api_key, "Host": "example.com"})
    assert r.status_code == 200


def test_loopback_host_header() -> None:
    assert loopback_host_header("127.0.0.1:8080")
    assert loopback_host_header("[::1]")
    assert loopback_host_header("localhost")
    assert not loopback_host_header(None)
    assert not loopback_host_header("")
    assert not loopback_host_header("[::1")
    assert not loopback_host_header("127.0.0.1:80:80")
