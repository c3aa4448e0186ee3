"""Import shims for Airflow 3.0 through 3.3.

``airflow.sdk.BaseHook`` only exists from 3.1; 3.0 keeps it in ``airflow.hooks.base``. Everything
else this provider needs is in ``airflow.sdk`` on every supported version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import BaseHook as BaseHook
else:
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # Airflow 3.0
        from airflow.hooks.base import BaseHook


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


__all__ = ["BaseHook", "mask_secret"]
