"""Headers sent on every CoinStats request, by both transports."""

from __future__ import annotations

from airflow_provider_coinstats import __version__
from airflow_provider_coinstats.api.settings import ClientSettings

USER_AGENT = f"airflow-provider-coinstats/{__version__}"


def default_headers(settings: ClientSettings) -> dict[str, str]:
    """Accept, User-Agent and the auth header chosen by the connection."""
    return {"Accept": "application/json", "User-Agent": USER_AGENT, **settings.auth_headers()}
