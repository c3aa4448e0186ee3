"""``ConnectExchangeOperator`` credential handling, called directly (no DAG run, no requests).

The DAG-level proof, over every render path and every place Airflow stores things, is in
``test_exchange_credentials_dags.py``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from airflow_provider_coinstats.exceptions import CoinStatsValidationError
from airflow_provider_coinstats.operators.portfolio import ConnectExchangeOperator

CREDS = {"apiKey": "unit-key-5f1e9c", "privateKey": "unit-priv-77ad03", "uid": "unit-uid-0c4b2e"}


def redact(text: str) -> Any:
    from airflow.sdk.execution_time.secrets_masker import redact as airflow_redact

    return airflow_redact(text)


def dag(**kwargs: Any) -> Any:
    from airflow.sdk import DAG

    return DAG(dag_id="unit", schedule=None, start_date=datetime(2025, 1, 1), **kwargs)


@pytest.mark.parametrize(
    ("connection_fields", "shown"),
    [
        ({"apiKey": "{{ params.creds.apiKey }}", "uid": "{{ params.creds.uid }}"}, {"apiKey": "***", "uid": "***"}),
        ("{{ params.creds | tojson }}", "***"),
        (None, None),
    ],
)
def test_airflow_renders_the_other_fields_and_is_shown_field_names_only(connection_fields: Any, shown: Any) -> None:
    op = ConnectExchangeOperator(task_id="c", exchange="{{ params.exchange }}", connection_fields=connection_fields)
    op.render_template_fields({"params": {"exchange": "uid-exchange", "creds": CREDS}})  # type: ignore[arg-type]
    assert op.exchange == "uid-exchange"
    assert op.connection_fields == shown
    assert all(secret not in json.dumps(op.connection_fields) for secret in CREDS.values())


@pytest.mark.parametrize(
    ("connection_fields", "native"),
    [
        ({"apiKey": "{{ params.creds.apiKey }}", "privateKey": "{{ params.creds.privateKey }}", "uid": "x"}, False),
        ("{{ params.creds | tojson }}", False),
        ("{{ params.creds }}", True),
    ],
)
def test_credentials_are_rendered_in_execute_from_the_context(connection_fields: Any, native: bool) -> None:
    with dag(render_template_as_native_obj=native):
        op = ConnectExchangeOperator(task_id="c", exchange="uid-exchange", connection_fields=connection_fields)
    context: Any = {"params": {"creds": CREDS}}
    op.render_template_fields(context)
    expected = dict(CREDS, uid="x") if isinstance(connection_fields, dict) else CREDS
    assert op.credentials(context) == expected


def test_every_value_is_masked_whatever_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXCH_UNIT",
        json.dumps({"conn_type": "generic", "login": "unit-login-9d2f41", "extra": {"memo": "unit-memo-3a8e17"}}),
    )
    op = ConnectExchangeOperator(
        task_id="c",
        exchange="uid-exchange",
        exchange_conn_id="exch_unit",
        connection_fields="{{ params.creds | tojson }}",
    )
    fields = op.credentials({"params": {"creds": CREDS}})  # type: ignore[arg-type]
    assert fields == {"apiKey": CREDS["apiKey"], "memo": "unit-memo-3a8e17", **CREDS}
    text = " ".join([*fields.values(), "unit-login-9d2f41"])
    assert redact(text) == " ".join(["***"] * (len(fields) + 1))


def test_native_numbers_are_sent_as_text() -> None:
    # With render_template_as_native_obj=True, Jinja turns a numeric uid into an int.
    with dag(render_template_as_native_obj=True):
        op = ConnectExchangeOperator(
            task_id="c", exchange="uid-exchange", connection_fields={"uid": "{{ params.uid }}", "apiKey": "k1"}
        )
    assert op.credentials({"params": {"uid": "1234567"}}) == {"uid": "1234567", "apiKey": "k1"}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("{{ params.creds }}", "not a JSON object; render it with the tojson filter"),  # a Python repr
        ("{{ params.creds.values() | list | tojson }}", "rendered to JSON list, not an object"),
        ("{{ params.creds.uid }}", "not a JSON object"),
    ],
)
def test_a_string_that_is_not_a_json_object_is_refused_without_echo(template: str, match: str) -> None:
    op = ConnectExchangeOperator(task_id="c", exchange="uid-exchange", connection_fields=template)
    with pytest.raises(CoinStatsValidationError, match=match) as info:
        op.credentials({"params": {"creds": CREDS}})  # type: ignore[arg-type]
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None
    assert all(secret not in str(info.value) for secret in CREDS.values())


def test_xcomarg_dependencies_are_kept() -> None:
    from airflow.sdk import task

    with dag():

        @task
        def creds() -> dict[str, str]:
            return CREDS

        plain = ConnectExchangeOperator(task_id="plain", exchange="uid-exchange", connection_fields=creds())
        in_dict = ConnectExchangeOperator(
            task_id="in_dict", exchange="uid-exchange", connection_fields={"apiKey": creds()["apiKey"]}
        )
        partial = ConnectExchangeOperator.partial(
            task_id="partial", exchange="uid-exchange", connection_fields=creds()
        ).expand(portfolio_name=["a", "b"])
        mapped = ConnectExchangeOperator.partial(task_id="mapped", exchange="uid-exchange").expand(
            connection_fields=creds.override(task_id="many")()
        )
    assert plain.upstream_task_ids == {"creds"}
    assert in_dict.upstream_task_ids == {"creds__1"}
    assert partial.upstream_task_ids == {"creds__2"}
    assert mapped.upstream_task_ids == {"many"}
