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


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read when an operator is built (not at import)."""
    from airflow.configuration import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)


__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "aget_connection",
    "default_deferrable",
    "mask_secret",
]
