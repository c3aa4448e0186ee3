"""Test-only DAGs: every way of giving ``ConnectExchangeOperator`` its credentials.

Each DAG takes the credentials from the connections ``cs_cred_a`` / ``cs_cred_b`` (set by the test
as ``AIRFLOW_CONN_*`` variables: login = apiKey, password = a Binance apiSecret, extra =
``{apiKey, privateKey, uid}``, the fields of the sandbox's ``uid-exchange``). ``privateKey`` and
``uid`` are names Airflow's secrets masker does not treat as sensitive, and connection logins are
never masked by Airflow, so only the operator itself can keep these values hidden.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_coinstats._compat import BaseHook
from airflow_provider_coinstats.operators.portfolio import ConnectExchangeOperator

POLL = 1.0  # the default [coinstats] min_poll_interval floor
UID_EXCHANGE = "uid-exchange"


def fields_of(conn_id: str) -> dict[str, str]:
    """``connection_fields`` for the uid exchange, as a dict of Jinja strings."""
    return {
        "apiKey": f"{{{{ conn.{conn_id}.login }}}}",
        "privateKey": f"{{{{ conn.{conn_id}.extra_dejson.privateKey }}}}",
        "uid": f"{{{{ conn.{conn_id}.extra_dejson.uid }}}}",
    }


def json_of(conn_id: str) -> str:
    """``connection_fields`` as one Jinja string rendering to a JSON object."""
    return f"{{{{ conn.{conn_id}.extra_dejson | tojson }}}}"


def read_credentials(conn_id: str) -> dict[str, Any]:
    """What an upstream task fetching credentials (e.g. from a vault) would return.

    Such a task is declared ``show_return_value_in_logs=False``, and its return value is stored in
    its own XCom: that is the upstream task's doing, not the connect operator's. It registers
    nothing with the secrets masker, as a task in another worker process would not share its masker.
    """
    return dict(BaseHook.get_connection(conn_id).extra_dejson)


def dag(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(dag_id=dag_id, schedule=None, start_date=datetime(2025, 1, 1), catchup=False, **kwargs)


def connect_and_wait(connection_fields: Any) -> ConnectExchangeOperator:
    """A plain connect task that defers until synced (so it leaves a trigger row to search)."""
    return ConnectExchangeOperator(
        task_id="connect_exchange",
        exchange=UID_EXCHANGE,
        connection_fields=connection_fields,
        wait_for_sync=True,
        poll_interval=POLL,
        sync_timeout=60,
    )


with dag("cs_cred_plain_templated") as cs_cred_plain_templated:
    connect_and_wait(fields_of("cs_cred_a"))

with dag("cs_cred_native_string", render_template_as_native_obj=True) as cs_cred_native_string:
    connect_and_wait("{{ conn.cs_cred_a.extra_dejson }}")

with dag("cs_cred_json_string") as cs_cred_json_string:
    connect_and_wait(json_of("cs_cred_a"))

with dag("cs_cred_xcomarg") as cs_cred_xcomarg:

    @task(show_return_value_in_logs=False)
    def credentials_a() -> dict[str, Any]:
        return read_credentials("cs_cred_a")

    connect_and_wait(credentials_a())

with dag("cs_cred_mapped_dicts") as cs_cred_mapped_dicts:
    ConnectExchangeOperator.partial(task_id="connect_exchange", exchange=UID_EXCHANGE).expand(
        connection_fields=[fields_of("cs_cred_a"), fields_of("cs_cred_b")]
    )

with dag("cs_cred_mapped_strings") as cs_cred_mapped_strings:
    ConnectExchangeOperator.partial(task_id="connect_exchange", exchange=UID_EXCHANGE).expand(
        connection_fields=[json_of("cs_cred_a"), json_of("cs_cred_b")]
    )

with dag("cs_cred_mapped_kwargs") as cs_cred_mapped_kwargs:
    ConnectExchangeOperator.partial(task_id="connect_exchange").expand_kwargs(
        [
            {"exchange": UID_EXCHANGE, "connection_fields": fields_of("cs_cred_a")},
            {
                "exchange": "binance",
                "connection_fields": {
                    "apiKey": "{{ conn.cs_cred_b.login }}",
                    "apiSecret": "{{ conn.cs_cred_b.password }}",
                },
            },
        ]
    )

with dag("cs_cred_mapped_xcomarg") as cs_cred_mapped_xcomarg:

    @task(show_return_value_in_logs=False)
    def credentials_ab() -> list[dict[str, Any]]:
        return [read_credentials("cs_cred_a"), read_credentials("cs_cred_b")]

    ConnectExchangeOperator.partial(task_id="connect_exchange", exchange=UID_EXCHANGE).expand(
        connection_fields=credentials_ab()
    )

with dag("cs_cred_partial_xcomarg") as cs_cred_partial_xcomarg:

    @task(show_return_value_in_logs=False)
    def credentials_b() -> dict[str, Any]:
        return read_credentials("cs_cred_b")

    ConnectExchangeOperator.partial(
        task_id="connect_exchange", exchange=UID_EXCHANGE, connection_fields=credentials_b()
    ).expand(portfolio_name=["first", "second"])
