"""Import shims for Airflow 3.0 through 3.3.

``airflow.sdk.BaseHook`` and ``airflow.sdk.exceptions`` only exist from 3.1; 3.0 keeps them in
``airflow.hooks.base`` and ``airflow.exceptions``. ``BaseHook.aget_connection`` is 3.1+ as well,
and only masks secrets without blocking from 3.3.2 (see :func:`aget_connection`).
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
        AirflowNotFoundException as AirflowNotFoundException,
    )
    from airflow.sdk.exceptions import (
        AirflowSensorTimeout as AirflowSensorTimeout,
    )
    from airflow.sdk.exceptions import (
        AirflowSkipException as AirflowSkipException,
    )
    from airflow.sdk.exceptions import (
        TaskDeferred as TaskDeferred,
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
            AirflowNotFoundException,
            AirflowSensorTimeout,
            AirflowSkipException,
        )
    except ImportError:  # Airflow 3.0
        from airflow.exceptions import (
            AirflowException,
            AirflowFailException,
            AirflowNotFoundException,
            AirflowSensorTimeout,
            AirflowSkipException,
        )
    try:
        from airflow.sdk.exceptions import TaskDeferred as TaskDeferred
    except ImportError:  # Airflow 3.0 (airflow.exceptions' one is deprecated from 3.1)
        from airflow.exceptions import TaskDeferred as TaskDeferred


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
    """Fetch a connection without blocking the event loop, from every place users keep one.

    Environment variables, secrets backends and the metastore, in a real triggerer and under
    ``dag.test()`` / ``airflow dags test``:

    - Airflow 3.3.2+ (``Connection.aextra_dejson``): ``BaseHook.aget_connection``. Under
      ``dag.test()`` its path to the metastore cannot work: the in-process supervisor that runs
      the trigger answers only synchronous requests (it has no ``asend``), the error is swallowed
      and a connection created in the UI or CLI comes back "isn't defined". A connection the
      async lookup does not find is therefore looked up once more synchronously, in a worker
      thread, where that supervisor does answer.
    - Older Airflow: the synchronous lookup in a worker thread. 3.0 has no ``aget_connection``;
      on 3.1 to 3.3.1 it masks secrets with a blocking call that raises ``DeadlockImminentError``
      while another trigger's call is in flight on the same loop (what
      ``airflow.providers.common.compat.connection.get_async_connection`` works around too).
    """
    from asgiref.sync import sync_to_async

    if _masks_asynchronously():
        try:
            conn: Connection = await BaseHook.aget_connection(conn_id)
            return conn
        except AirflowNotFoundException:
            pass
    found: Connection = await sync_to_async(BaseHook.get_connection)(conn_id)
    return found


def _masks_asynchronously() -> bool:
    try:
        from airflow.sdk import Connection as SdkConnection
    except ImportError:  # Airflow 3.0
        return False
    return hasattr(SdkConnection, "aextra_dejson")


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
    "AirflowNotFoundException",
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
