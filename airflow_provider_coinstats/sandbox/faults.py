"""Injected failures: what a fault is, which requests it hits, and when it expires."""

from __future__ import annotations

import fnmatch
import random
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from airflow_provider_coinstats.api.catalog import ENDPOINTS

FaultKind = Literal["status", "slow", "drop", "drop_after", "truncate", "redirect", "trickle", "ignore_page"]
FaultBody = Literal["json", "text", "empty", "no_request_id"]

_KINDS = frozenset(get_args(FaultKind))
_BODIES = frozenset(get_args(FaultBody))
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass
class Fault:
    """A failure the sandbox injects into matching API requests.

    Kinds: ``"status"`` answers ``status`` without doing the operation (no side effect, no
    credits); ``"slow"`` waits ``delay`` seconds, then behaves normally; ``"drop"`` closes the
    connection mid-response without doing the operation; ``"drop_after"`` does the operation
    (creates the portfolio, charges credits) and then drops the connection, i.e. "the request
    reached CoinStats but the answer was lost"; ``"truncate"`` does the operation and answers
    with a complete HTTP message whose JSON body is cut in half; ``"redirect"`` answers
    ``status`` (301/302/303/307/308) with ``Location: <location>`` and does nothing else;
    ``"trickle"`` does the operation and sends its answer a few bytes at a time, ``delay``
    seconds apart (with ``endless`` it then keeps sending blank padding until the client hangs
    up, the state is reset or :data:`TRICKLE_MAX_SECONDS` pass); ``"ignore_page"`` answers page 1
    whatever ``page`` asks for, as a server that ignores the parameter would.

    ``endpoint`` is a catalog name (``"portfolio_coins"``), a path glob (``"/portfolio/*"``,
    matched against the path with and without ``/v1``) or ``None`` for every API endpoint.
    ``times`` expires the fault after that many hits; ``rate`` makes it fire with that
    probability, drawn from a RNG seeded with ``SandboxConfig.seed``.

    Example::

        state.add_fault(Fault("status", endpoint="portfolio_coins", status=429, times=2,
                              retry_after="1"))
        state.add_fault(Fault("drop_after", endpoint="connect_wallet", times=1))
        state.add_fault(Fault("redirect", status=307, location="http://127.0.0.2:8080/x"))
        state.add_fault(Fault("trickle", endpoint="usage_credits", delay=0.5, endless=True))
    """

    kind: FaultKind
    endpoint: str | None = None
    times: int | None = None
    rate: float | None = None
    status: int = 503
    retry_after: str | None = None
    body: FaultBody = "json"
    delay: float = 0.0
    location: str | None = None
    endless: bool = False

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"fault kind must be one of {sorted(_KINDS)}, got {self.kind!r}")
        if self.kind == "redirect":
            if self.status not in REDIRECT_STATUSES:
                raise ValueError(f"a redirect fault's status must be one of {sorted(REDIRECT_STATUSES)}")
            if not isinstance(self.location, str) or not self.location.strip():
                raise ValueError("a redirect fault needs a location (the Location header to send)")
            if any(c in self.location for c in "\r\n"):
                raise ValueError("fault location must be a single line")
        elif self.location is not None:
            raise ValueError("fault location only applies to kind 'redirect'")
        if not isinstance(self.endless, bool):
            raise ValueError("fault endless must be true or false")
        if self.kind == "trickle" and (not isinstance(self.delay, int | float) or not self.delay > 0):
            raise ValueError("a trickle fault needs a delay > 0 (seconds between chunks)")
        if self.endpoint is not None and not (
            self.endpoint in ENDPOINTS or (isinstance(self.endpoint, str) and self.endpoint.startswith("/"))
        ):
            raise ValueError(
                f"fault endpoint must be a catalog name ({', '.join(ENDPOINTS)}) or a path glob "
                f"starting with '/', got {self.endpoint!r}"
            )
        if self.times is not None and (not _is_int(self.times) or self.times < 1):
            raise ValueError("fault times must be a positive integer or None")
        if self.rate is not None and (
            not isinstance(self.rate, int | float) or isinstance(self.rate, bool) or not 0 <= self.rate <= 1
        ):
            raise ValueError("fault rate must be between 0 and 1 or None")
        # 1xx cannot end an HTTP exchange, so they are not valid final answers.
        if not _is_int(self.status) or not 200 <= self.status <= 599:
            raise ValueError("fault status must be an HTTP status code between 200 and 599")
        if self.retry_after is not None and not isinstance(self.retry_after, str):
            raise ValueError("fault retry_after must be a string (seconds or an HTTP date)")
        if self.body not in _BODIES:
            raise ValueError(f"fault body must be one of {sorted(_BODIES)}, got {self.body!r}")
        if not isinstance(self.delay, int | float) or isinstance(self.delay, bool) or self.delay < 0:
            raise ValueError("fault delay must be a number >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from JSON data (CLI ``--fault``, ``POST /_sandbox/faults``)."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        if "kind" not in data:
            raise ValueError("a fault needs a kind")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, endpoint: str, path: str) -> bool:
        if self.endpoint is None:
            return True
        if self.endpoint in ENDPOINTS:
            return self.endpoint == endpoint
        bare = path[3:] if path.startswith("/v1/") else path
        return fnmatch.fnmatchcase(path, self.endpoint) or fnmatch.fnmatchcase(bare, self.endpoint)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class FaultQueue:
    """Faults in the order added; not thread-safe on its own (``SandboxState`` locks around it)."""

    def __init__(self, seed: int) -> None:
        self._entries: list[tuple[Fault, list[int | None]]] = []
        self._rng = random.Random(seed)

    def add(self, fault: Fault) -> None:
        # The remaining count lives beside the fault so the caller's object is never mutated.
        self._entries.append((fault, [fault.times]))

    def clear(self, seed: int | None = None) -> None:
        self._entries.clear()
        if seed is not None:
            self._rng = random.Random(seed)

    def active(self) -> list[Fault]:
        return [fault for fault, _ in self._entries]

    def take(self, endpoint: str, path: str) -> Fault | None:
        """The first matching fault that fires for this request, consuming one of its ``times``."""
        for index, (fault, remaining) in enumerate(self._entries):
            if not fault.matches(endpoint, path):
                continue
            # A rate fault that does not fire lets later faults have their turn.
            if fault.rate is not None and self._rng.random() >= fault.rate:
                continue
            left = remaining[0]
            if left is not None:
                if left <= 1:
                    del self._entries[index]
                else:
                    remaining[0] = left - 1
            return fault
        return None
