"""Import shims for Airflow 3.0 through 3.3.

``airflow.sdk.BaseHook`` and ``airflow.sdk.exceptions`` only exist from 3.1; 3.0 keeps them in
``airflow.hooks.base`` and ``airflow.exceptions``. ``BaseHook.aget_connection`` is 3.1+ as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import BaseHook as BaseHook
    from airflow.sdk.definitions.connection import Connection
    from airflow.sdk.exceptions import (
        AirflowException as AirflowException,
    )
    from airflow.sdk.exceptions import (
        AirflowFailException as AirflowFailException,
    )
    from airflow.sdk.exceptions import (
        AirflowSensorTimeout as AirflowSensorTimeout,
    )
    from airflow.sdk.exceptions import (
        AirflowSkipException as AirflowSkipException,
    )
else:
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # Airflow 3.0
        from airflow.hooks.base import BaseHook
    try:
        from airflow.sdk.exceptions import (
            AirflowException,
            AirflowFailException,
            AirflowSensorTimeout,
            AirflowSkipException,
        )
    except ImportError:  # Airflow 3.0
        from airflow.exceptions import (
            AirflowException,
            AirflowFailException,
            AirflowSensorTimeout,
            AirflowSkipException,
        )


def mask_secret(value: str) -> None:
    """Register ``value`` with Airflow's secrets masker (a second line of defence only)."""
    masker: Any
    try:
        from airflow.sdk.log import mask_secret as sdk_masker

        masker = sdk_masker
    except ImportError:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import mask_secret as legacy_masker

        masker = legacy_masker
    masker(value)


async def aget_connection(conn_id: str) -> Connection:
    """Fetch a connection without blocking the event loop (triggers must not call the sync API)."""
    if hasattr(BaseHook, "aget_connection"):
        conn: Connection = await BaseHook.aget_connection(conn_id)
        return conn
    from asgiref.sync import sync_to_async  # Airflow 3.0

    legacy: Connection = await sync_to_async(BaseHook.get_connection)(conn_id)
    return legacy


def airflow_conf() -> Any:
    """Airflow's already-loaded config: the Task SDK's on 3.1+, the core one on 3.0.

    Lookups read the parsed ``airflow.cfg`` and the ``AIRFLOW__<SECTION>__<KEY>`` environment
    variables at call time; nothing is read from disk again.
    """
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.0
        from airflow.configuration import conf
    return conf


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read when an operator is built (not at import)."""
    return bool(airflow_conf().getboolean("operators", "default_deferrable", fallback=False))


__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "aget_connection",
    "airflow_conf",
    "default_deferrable",
    "mask_secret",
]


def prepare_dag_test(dag: Any, bundle_name: str = "dags-folder") -> None:
    """Write ``dag`` and its Assets to the metadata DB before ``dag.test()`` on Airflow 3.0.

    Airflow 3.0's ``dag.test()`` never writes the DAG to the DB (the DAG processor does that in a
    deployment), so its Assets are never activated and every task with ``outlets`` fails with
    ``AirflowInactiveAssetInInletOrOutletException``. 3.1+ syncs the DAG itself; this is a no-op there.

    Example::

        prepare_dag_test(dag)
        dag.test()
    """
    import airflow
    from packaging.version import Version

    if Version(airflow.__version__) >= Version("3.1"):
        return
    from airflow.models.dag import DAG as SchedulerDAG
    from airflow.models.dagbundle import DagBundleModel
    from airflow.serialization.serialized_objects import SerializedDAG  # type: ignore[attr-defined]
    from airflow.utils.session import create_session

    with create_session() as session:
        if session.get(DagBundleModel, bundle_name) is None:
            session.add(DagBundleModel(name=bundle_name))
            session.flush()
        scheduler_dag = SerializedDAG.deserialize_dag(SerializedDAG.serialize_dag(dag))  # type: ignore[attr-defined]
        SchedulerDAG.bulk_write_to_db(bundle_name, None, [scheduler_dag], session=session)
