"""Shared-portfolio test helpers: a sandbox app portfolio, a Degen key and a share connection for it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from airflow_provider_coinstats.sandbox import SharedPortfolio as SandboxShare


def degen(server: Any) -> None:
    """Put the sandbox's key on the plan that may read portfolios by share token."""
    server.state.configure(subscription="Degen", sync_polls=0)


def share_connection(
    server: Any,
    monkeypatch: pytest.MonkeyPatch,
    label: str = "alice",
    *,
    transactions: int | None = None,
    portfolio_name: str | None = None,
    passcode: bool | str = True,
    conn_id: str | None = None,
    wrong_passcode: bool = False,
) -> tuple[SandboxShare, str]:
    """Create an app portfolio shared by link and an ``AIRFLOW_CONN_*`` share connection for it.

    The key is put on the Degen plan first. ``wrong_passcode`` stores another passcode in the
    connection than the share has. Returns the sandbox's share and the connection id.
    """
    degen(server)
    kwargs: dict[str, Any] = {"passcode": passcode}
    if transactions is not None:
        kwargs["transactions"] = transactions
    share = server.state.create_shared(label, **kwargs)
    conn_id = conn_id or f"coinstats_share_{uuid.uuid4().hex[:8]}"
    stored = share.passcode
    if wrong_passcode:
        stored = "00000000" if stored != "00000000" else "11111111"
    conn: dict[str, Any] = {"conn_type": "generic", "login": share.share_token}
    if stored is not None:
        conn["password"] = stored
    if portfolio_name is not None:
        conn["extra"] = {"portfolio_name": portfolio_name}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return share, conn_id


def secrets_of(share: SandboxShare) -> list[str]:
    """The values that must appear nowhere: the share token and (if any) the passcode."""
    return [v for v in (share.share_token, share.passcode) if v]
