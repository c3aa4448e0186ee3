"""The sandbox's redirect, trickle and ignore_page faults, over raw HTTP."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
import requests

from airflow_provider_coinstats.sandbox import Fault
from airflow_provider_coinstats.sandbox.app import TRICKLE_CHUNK
from tests.helpers import ADDRESS


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_answers_status_and_location_only(sandbox: Any, http: requests.Session, status: int) -> None:
    location = "http://127.0.0.2:9/elsewhere?token=x"
    sandbox.state.add_fault(Fault("redirect", endpoint="connect_wallet", status=status, location=location))
    r = http.post(
        f"{sandbox.url}/portfolio/wallet",
        json={"address": ADDRESS, "connectionId": "ethereum"},
        allow_redirects=False,
    )
    assert r.status_code == status
    assert r.headers["Location"] == location
    assert r.content == b""
    # Nothing else happened: no portfolio, no credits, one logged request.
    assert sandbox.state.portfolios() == []
    assert sandbox.state.credits_used() == 0
    assert [(x.status, x.fault) for x in sandbox.state.requests()] == [(status, "redirect")]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"kind": "redirect", "status": 200, "location": "http://x"}, "status"),
        ({"kind": "redirect", "status": 302}, "location"),
        ({"kind": "redirect", "status": 302, "location": "  "}, "location"),
        ({"kind": "redirect", "status": 302, "location": "http://x\r\nSet-Cookie: a=b"}, "single line"),
        ({"kind": "status", "status": 503, "location": "http://x"}, "only applies"),
        ({"kind": "trickle", "delay": 0}, "delay > 0"),
        ({"kind": "trickle", "delay": 0.1, "endless": "yes"}, "endless"),
    ],
)
def test_new_fault_fields_are_validated(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Fault.from_dict(fields)


def test_new_faults_over_the_admin_api(sandbox: Any) -> None:
    admin = f"{sandbox.url}/_sandbox/faults"
    faults = [
        {"kind": "redirect", "status": 307, "location": "http://127.0.0.2:1/x"},
        {"kind": "trickle", "delay": 0.5, "endless": True, "endpoint": "usage_credits"},
        {"kind": "ignore_page", "endpoint": "portfolio_transactions"},
    ]
    for fault in faults:
        assert requests.post(admin, json=fault).status_code == 200
    listed = requests.get(admin).json()
    assert [(f["kind"], f["location"], f["endless"]) for f in listed] == [
        ("redirect", "http://127.0.0.2:1/x", False),
        ("trickle", None, True),
        ("ignore_page", None, False),
    ]


def test_trickle_sends_a_few_bytes_at_a_time(sandbox: Any, http: requests.Session) -> None:
    expected = http.get(f"{sandbox.url}/usage/credits").content
    sandbox.state.add_fault(Fault("trickle", endpoint="usage_credits", delay=0.02, times=1))
    r = http.get(f"{sandbox.url}/usage/credits", stream=True)
    pieces: list[bytes] = []
    while chunk := r.raw.read1(1024):
        pieces.append(chunk)
    assert b"".join(pieces) == expected
    assert max(len(p) for p in pieces) <= TRICKLE_CHUNK * 2  # arrives in small pieces, not at once
    assert len(pieces) >= len(expected) // (TRICKLE_CHUNK * 2)
    assert [x.fault for x in sandbox.state.requests(endpoint="usage_credits")] == [None, "trickle"]


def test_endless_trickle_keeps_the_connection_busy(sandbox: Any) -> None:
    sandbox.state.add_fault(Fault("trickle", endpoint="usage_credits", delay=0.05, endless=True))
    with socket.create_connection((sandbox.host, sandbox.port), timeout=5) as conn:
        conn.sendall(f"GET /usage/credits HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-KEY: {sandbox.api_key}\r\n\r\n".encode())
        received = b""
        padding = b"1\r\n \r\n"  # one chunk holding one blank
        deadline = time.monotonic() + 5
        # The padding keeps coming after the JSON: wait for 20 chunks of it (at 0.05 s apart).
        while received.count(padding) < 20 and time.monotonic() < deadline:
            received += conn.recv(4096)
    head = received.partition(b"\r\n\r\n")[0].lower()
    assert b"transfer-encoding: chunked" in head
    assert b"content-length" not in head
    assert received.count(padding) >= 20


def test_ignore_page_serves_page_one_and_logs_the_page_asked(sandbox: Any, http: requests.Session) -> None:
    sandbox.state.configure(sync_polls=0)
    pid = http.post(f"{sandbox.url}/portfolio/wallet", json={"address": ADDRESS, "connectionId": "ethereum"}).json()[
        "portfolioId"
    ]
    sandbox.state.set_transaction_count(pid, 30)
    url = f"{sandbox.url}/portfolio/transactions"
    params = {"portfolioId": pid, "currency": "USD", "limit": 10}
    page1 = http.get(url, params={**params, "page": 1}).json()["data"]
    sandbox.state.add_fault(Fault("ignore_page", endpoint="portfolio_transactions", times=1))
    page2 = http.get(url, params={**params, "page": 2}).json()["data"]
    assert json.dumps(page2) == json.dumps(page1)
    assert http.get(url, params={**params, "page": 2}).json()["data"] != page1  # fault used up
    logged = sandbox.state.requests(endpoint="portfolio_transactions")
    assert [(r.query["page"], r.fault) for r in logged] == [("1", None), ("2", "ignore_page"), ("2", None)]
