"""Run-time settings of the CoinStats sandbox and the loopback-only host rule."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field, fields
from typing import Any, Final

DEFAULT_API_KEY: Final = "sandbox-api-key"
DEFAULT_CREDITS: Final = 1_000_000
#: The plan that may read portfolios by share token ("only available for users with a Degen plan").
SHARE_PLAN: Final = "Degen"

#: Fields that :meth:`SandboxState.configure` and ``POST /_sandbox/config`` may change.
CONFIG_FIELDS: Final = (
    "api_keys",
    "sync_polls",
    "sync_seconds",
    "latency",
    "transactions_per_portfolio",
    "seed",
    "subscription",
    "plans",
)


def _default_keys() -> dict[str, int]:
    return {DEFAULT_API_KEY: DEFAULT_CREDITS}


@dataclass
class SandboxConfig:
    """How the sandbox behaves; every field can be changed at run time with ``state.configure``.

    ``api_keys`` maps each accepted API key to its total credits (each key has its own ledger).
    A portfolio is "syncing" after connect or PATCH /portfolio/sync until it has been polled
    ``sync_polls`` times *and* ``sync_seconds`` have passed (``float("inf")`` = never syncs).
    ``latency`` is added to every API response without blocking the server's event loop.
    ``subscription`` is every key's plan unless ``plans`` names another one for that key; reading
    a shared portfolio (share token) needs the plan :data:`SHARE_PLAN` ("Degen").

    Example::

        SandboxConfig(api_keys={"k1": 500, "k2": 10_000}, sync_polls=0, latency=0.05)
    """

    api_keys: dict[str, int] = field(default_factory=_default_keys)
    sync_polls: int = 2
    sync_seconds: float = 0.0
    latency: float = 0.0
    transactions_per_portfolio: int = 57
    seed: int = 7
    subscription: str = "PRO"
    plans: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` when a field is out of range (checked on creation and on change)."""
        if not isinstance(self.api_keys, dict) or not self.api_keys:
            raise ValueError("api_keys must be a non-empty dict of key -> total credits")
        for key, total in self.api_keys.items():
            if not isinstance(key, str) or not key:
                raise ValueError("every API key must be a non-empty string")
            if not _is_int(total) or total < 0:
                raise ValueError("credits per key must be a non-negative integer")
        if not _is_int(self.sync_polls) or self.sync_polls < 0:
            raise ValueError("sync_polls must be a non-negative integer")
        if not _is_number(self.sync_seconds) or self.sync_seconds < 0 or math.isnan(self.sync_seconds):
            raise ValueError("sync_seconds must be >= 0 (inf = never syncs)")
        if not _is_number(self.latency) or not 0 <= self.latency < math.inf:
            raise ValueError("latency must be a finite number >= 0")
        if not _is_int(self.transactions_per_portfolio) or self.transactions_per_portfolio < 0:
            raise ValueError("transactions_per_portfolio must be a non-negative integer")
        if not _is_int(self.seed):
            raise ValueError("seed must be an integer")
        if not isinstance(self.subscription, str):
            raise ValueError("subscription must be a string")
        if not isinstance(self.plans, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.plans.items()
        ):
            raise ValueError("plans must be a dict of API key -> plan name")

    def plan(self, api_key: str) -> str:
        """The plan of ``api_key``: its entry in ``plans``, else ``subscription``."""
        return self.plans.get(api_key, self.subscription)

    @property
    def first_key(self) -> str:
        return next(iter(self.api_keys))

    def redacted(self) -> dict[str, Any]:
        """The config as JSON-able data with API keys replaced by labels ("key-1", ...)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["api_keys"] = {key_label(i): total for i, total in enumerate(self.api_keys.values())}
        labels = {key: key_label(i) for i, key in enumerate(self.api_keys)}
        # A plan for a key that is not (yet) configured is kept but never shown by its key.
        out["plans"] = {labels[key]: plan for key, plan in self.plans.items() if key in labels}
        if math.isinf(self.sync_seconds):
            # JSON has no infinity; the admin API accepts the same spelling back.
            out["sync_seconds"] = "inf"
        return out


def key_label(index: int) -> str:
    """Public name for the ``index``-th configured key, so keys never leave the process."""
    return f"key-{index + 1}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def loopback_host(host: str) -> str:
    """Return the address to bind for ``host``, refusing anything that is not loopback.

    The sandbox accepts any API key and hands out fake data; exposing it beyond this machine
    would invite someone to mistake it for the real service, so only loopback is allowed.
    """
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(f"sandbox host must be a loopback IP address, got {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"sandbox host must be a loopback address, got {host!r}")
    return str(address)
