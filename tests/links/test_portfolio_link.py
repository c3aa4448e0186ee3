"""The "CoinStats Portfolio" link: http(s) templates only, the portfolio id URL-quoted.

``portfolio_url`` is pure and tested directly; the link button (``get_link``, which Airflow 3 runs in
the worker when the task finishes and stores as the ``_link_CoinStatsPortfolioLink`` XCom) is
tested through real ``dag.test()`` runs against the sandbox.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_coinstats.links.portfolio import DEFAULT_PORTFOLIO_URL, PORTFOLIO_URL_XCOM_KEY, portfolio_url
from tests.helpers import FAST_RETRY

LINK_XCOM_KEY = "_link_CoinStatsPortfolioLink"

NOT_WEB = [
    "javascript:alert(document.cookie)//{portfolio_id}",
    "JavaScript:alert(1)//{portfolio_id}",
    " javascript:alert(1)//{portfolio_id}",
    "java\tscript:alert(1)//{portfolio_id}",
    "java\nscript:alert(1)//{portfolio_id}",
    "data:text/html,<script>alert(1)</script>{portfolio_id}",
    "file:///etc/passwd?{portfolio_id}",
    "vbscript:msgbox({portfolio_id})",
    "//evil.example/{portfolio_id}",
    "ftp://files.example/{portfolio_id}",
    "https:///{portfolio_id}",
    "https://app.example/p/{portfolio_id} ",
    "coinstats.app/portfolio/{portfolio_id}",
]


@pytest.mark.parametrize("template", NOT_WEB)
def test_only_http_templates_become_links(template: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_provider_coinstats.links.portfolio"):
        assert portfolio_url(template, "abc123") == DEFAULT_PORTFOLIO_URL
    assert "portfolio_url_template is not an http(s):// URL" in caplog.text


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("https://app.example/p/{portfolio_id}", "https://app.example/p/abc123"),
        ("HTTP://127.0.0.1:8080/p?id={portfolio_id}", "HTTP://127.0.0.1:8080/p?id=abc123"),
        ("https://app.example/static", "https://app.example/static"),
        (None, DEFAULT_PORTFOLIO_URL),
        ("", DEFAULT_PORTFOLIO_URL),
    ],
)
def test_http_templates_are_used(template: str | None, expected: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert portfolio_url(template, "abc123") == expected
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("portfolio_id", "quoted"),
    [
        ("a/b", "a%2Fb"),
        ("../admin", "..%2Fadmin"),
        ("x?next=https://evil.example", "x%3Fnext%3Dhttps%3A%2F%2Fevil.example"),
        ("x#frag", "x%23frag"),
        ("x y", "x%20y"),
        ("x@evil.example", "x%40evil.example"),
    ],
)
def test_portfolio_id_is_url_quoted(portfolio_id: str, quoted: str) -> None:
    assert portfolio_url("https://app.example/p/{portfolio_id}/view", portfolio_id) == (
        f"https://app.example/p/{quoted}/view"
    )


def test_script_template_falls_back_in_a_real_run(
    coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    extra = {**FAST_RETRY, "portfolio_url_template": "javascript:alert(document.cookie)//{portfolio_id}"}
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_conn.airflow_connection(extra=extra))
    coinstats_conn.state.configure(sync_polls=0)
    result = run_dag("cs_test_poke")
    assert result.state == "success"
    assert result.xcom("connect_wallet", PORTFOLIO_URL_XCOM_KEY) == DEFAULT_PORTFOLIO_URL
    assert result.xcom("connect_wallet", LINK_XCOM_KEY) == DEFAULT_PORTFOLIO_URL
    warnings = [r for r in caplog.records if r.name == "airflow_provider_coinstats.links.portfolio"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert "portfolio_url_template is not an http(s):// URL" in warnings[0].getMessage()


def test_http_template_links_to_the_portfolio_in_a_real_run(
    coinstats_conn: Any, run_dag: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {**FAST_RETRY, "portfolio_url_template": "https://app.example/p/{portfolio_id}"}
    monkeypatch.setenv("AIRFLOW_CONN_COINSTATS_DEFAULT", coinstats_conn.airflow_connection(extra=extra))
    coinstats_conn.state.configure(sync_polls=0)
    result = run_dag("cs_test_poke")
    pid = result.xcom("connect_wallet")
    assert result.xcom("connect_wallet", LINK_XCOM_KEY) == f"https://app.example/p/{pid}"


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("javascript:alert(1)", ""),
        ("file:///etc/passwd", ""),
        ("https://app.example/p/1", "https://app.example/p/1"),
    ],
)
def test_link_refuses_a_pushed_non_web_url(run_dag: Any, url: str, link: str) -> None:
    result = run_dag("cs_link_pushed_url", conf={"url": url})
    assert result.state == "success"
    assert result.xcom("push", PORTFOLIO_URL_XCOM_KEY) == url
    assert result.xcom("push", LINK_XCOM_KEY) == link
