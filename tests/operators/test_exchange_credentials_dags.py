"""No exchange credential is ever rendered or stored, on any path Airflow renders a task through.

Each test runs one DAG of ``tests/dags/coinstats_credential_dags.py`` with real ``dag.test()``
against the sandbox over HTTP, with credentials that are unique strings, then searches every
place Airflow or the provider writes to for each of them: the console and Python log records,
task log files, XCom rows, rendered template fields, trigger rows (and the task instance's
``next_kwargs``), serialized DAG rows and the sandbox's request log. Every haystack is checked to
be non-empty first, and the connect is proven to have sent the right ``apiKey`` (connecting the
same account again answers ``existing`` with the same portfolio id).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_coinstats.hooks.coinstats import CoinStatsHook
from tests.helpers import FAST_RETRY
from tests.secret_search import leaks, run_haystacks

UID_EXCHANGE = "uid-exchange"
#: Tasks that fetch credentials and return them: Airflow stores their return value in XCom by
#: design (that is the upstream task's choice, not the connect operator's), so their own XCom
#: rows are the one place a secret is expected.
CREDENTIAL_PRODUCERS = ("credentials_a", "credentials_b", "credentials_ab")


@dataclass(frozen=True)
class Account:
    """One exchange account's secrets, unique per test run."""

    api_key: str
    private_key: str
    uid: str
    api_secret: str  # only used by the Binance leg

    @classmethod
    def new(cls, label: str) -> Account:
        tag = uuid.uuid4().hex[:12]
        return cls(f"{label}-KEY-{tag}", f"{label}-PRIV-{tag}", f"{label}-UID-{tag}", f"{label}-SECRET-{tag}")

    def secrets(self) -> tuple[str, ...]:
        return (self.api_key, self.private_key, self.uid, self.api_secret)

    def fields(self, exchange: str) -> dict[str, str]:
        if exchange == UID_EXCHANGE:
            return {"apiKey": self.api_key, "privateKey": self.private_key, "uid": self.uid}
        return {"apiKey": self.api_key, "apiSecret": self.api_secret}

    def connection(self) -> str:
        return json.dumps(
            {
                "conn_type": "generic",
                "login": self.api_key,
                "password": self.api_secret,
                "extra": self.fields(UID_EXCHANGE),
            }
        )


@dataclass(frozen=True)
class Case:
    dag_id: str
    #: map_index -> (account label, exchange)
    connects: dict[int, tuple[str, str]]
    defers: bool


PLAIN = {-1: ("a", UID_EXCHANGE)}
MAPPED_AB = {0: ("a", UID_EXCHANGE), 1: ("b", UID_EXCHANGE)}
CASES = [
    Case("cs_cred_plain_templated", PLAIN, defers=True),
    Case("cs_cred_native_string", PLAIN, defers=True),
    Case("cs_cred_json_string", PLAIN, defers=True),
    Case("cs_cred_xcomarg", PLAIN, defers=True),
    Case("cs_cred_mapped_dicts", MAPPED_AB, defers=False),
    Case("cs_cred_mapped_strings", MAPPED_AB, defers=False),
    Case("cs_cred_mapped_kwargs", {0: ("a", UID_EXCHANGE), 1: ("b", "binance")}, defers=False),
    Case("cs_cred_mapped_xcomarg", MAPPED_AB, defers=False),
    Case("cs_cred_partial_xcomarg", {0: ("b", UID_EXCHANGE), 1: ("b", UID_EXCHANGE)}, defers=False),
]


def _producer_xcom_push(line: str) -> bool:
    """A console line showing a credential producer's own XCom push (Airflow 3.0 debug-logs them)."""
    return "SetXCom(" in line and any(f"task_id='{task_id}'" in line for task_id in CREDENTIAL_PRODUCERS)


@pytest.mark.parametrize("case", CASES, ids=[c.dag_id for c in CASES])
def test_credentials_never_rendered_or_stored(
    coinstats_conn: Any,
    run_dag: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    case: Case,
) -> None:
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:  # trigger rows left by earlier tests would blur the search
        session.query(Trigger).delete()
    # The deferral-race guard is for real deployments; dag.test() resumes in-process.
    monkeypatch.setenv("AIRFLOW__COINSTATS__MIN_FIRST_POLL_DELAY", "0")
    api_key = f"cs-key-{uuid.uuid4().hex}"
    coinstats_conn.state.configure(api_keys={api_key: 1_000_000}, sync_polls=2)
    monkeypatch.setenv(
        "AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_conn.airflow_connection(api_key=api_key, extra=FAST_RETRY)
    )
    accounts = {"a": Account.new("A"), "b": Account.new("B")}
    for label, account in accounts.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_CS_CRED_{label.upper()}", account.connection())

    result = run_dag(case.dag_id)

    assert result.state == "success", result.tasks
    out, err = capfd.readouterr()
    console = "\n".join(line for line in (out + err).splitlines() if not _producer_xcom_push(line))
    haystacks = run_haystacks(
        case.dag_id,
        result.run_id,
        console=console,
        log_records=caplog.text,
        sandbox_requests=coinstats_conn.state.requests(),
        skip_xcom_of=CREDENTIAL_PRODUCERS,
    )
    assert "connect_exchange" in haystacks["console"]  # the task output was captured
    assert "connect_exchange" in haystacks["log records"]
    assert "connect_exchange" in haystacks["xcom rows"]
    assert "connect_exchange" in haystacks["rendered template fields"]
    assert "connection_fields" in haystacks["serialized DAG rows"]
    assert "connect_exchange" in haystacks["sandbox request log"]
    if case.defers:
        assert "CoinStatsPortfolioSyncTrigger" in haystacks["trigger rows"]
    secrets = {api_key, *(s for account in accounts.values() for s in account.secrets())}
    found = leaks(secrets, haystacks)
    assert not found, "\n".join(found)

    # The connect really happened, with each map index's own apiKey: connecting the same account
    # again is "existing" with the portfolio id the task pushed. An account connected by several
    # map indexes (in whatever order Airflow ran them) is "connected" once, then "existing".
    hook = CoinStatsHook()
    statuses: dict[tuple[str, str], list[str]] = {}
    for map_index, account in case.connects.items():
        statuses.setdefault(account, []).append(result.xcom("connect_exchange", "connection_status", map_index))
        label, exchange = account
        again = hook.connect_exchange(exchange, accounts[label].fields(exchange))
        assert again.status == "existing"
        assert again.portfolio_id == result.xcom("connect_exchange", map_index=map_index)
    for seen in statuses.values():
        assert sorted(seen) == ["connected"] + ["existing"] * (len(seen) - 1)
