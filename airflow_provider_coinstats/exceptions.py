"""Typed errors raised by the CoinStats provider.

Every HTTP answer that is not a success becomes one of these in exactly one place
(:func:`airflow_provider_coinstats.api.responses.classify_response`); operators, sensors and triggers
only ever catch these classes, never look at status codes.

Messages name the endpoint and the requestId and never contain the API key or exchange
credentials: secrets are scrubbed before a message is built.

Example::

    try:
        hook.get_portfolio_value(portfolio_id)
    except CoinStatsNotSyncedError:
        ...  # not yet: poll again later
"""

from __future__ import annotations

from typing import ClassVar


class CoinStatsError(Exception):
    """Base class of every error raised by this provider.

    ``retryable`` says whether the same request may succeed if sent again; the retry policy reads
    it and nothing else.
    """

    retryable: ClassVar[bool] = False


class CoinStatsValidationError(CoinStatsError, ValueError):
    """Bad input caught before any request was sent (so no credits were spent).

    ``field`` names the offending argument.

    Example::

        CoinStatsValidationError("address", "must be a non-empty string")
        # str(): "address: must be a non-empty string"
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class CoinStatsConfigError(CoinStatsError, ValueError):
    """The Airflow connection is unusable (bad host, plain http to a remote host, bad extra)."""


class CoinStatsDestinationError(CoinStatsError):
    """An export destination cannot be written: checked before any paid request, or failing mid-load.

    Not permanent: storage outages, locks, lost connections and permissions can be fixed between
    Airflow retries. Found by the pre-flight check, it costs no credits; mid-load, the load has
    rolled back, so a retry duplicates nothing. The message keeps the database's or store's own words.

    Example::

        CoinStatsDestinationError("path", "cannot write to s3://bucket/coinstats: AccessDenied")
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class CoinStatsExportCancelledError(CoinStatsError):
    """The task was killed (SIGTERM, ``on_kill``) during an export; the open load was rolled back.

    Not permanent: Airflow task retries apply, as for any interrupted run.

    Example::

        CoinStatsExportCancelledError("the task was killed while reading CoinStats pages")
    """


class CoinStatsTransportError(CoinStatsError):
    """No complete HTTP answer: connection refused or dropped, timeout. Retryable.

    ``sent`` says whether the request may have reached CoinStats: ``False`` only when the
    connection was never made (refused, connect timeout), so even a charged, non-idempotent call
    can be repeated safely; ``True`` when the answer was lost after sending (read timeout,
    dropped mid-answer), when CoinStats may have done the work.

    Example::

        CoinStatsTransportError("PATCH", "/portfolio/sync", "ConnectionRefused", sent=False)
    """

    retryable = True

    def __init__(self, method: str, path: str, reason: str, *, sent: bool = True) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        self.sent = sent
        super().__init__(f"CoinStats {method} {path}: no complete response ({reason})")


class CoinStatsAPIError(CoinStatsError):
    """CoinStats answered with an error status (or an unusable body).

    Carries ``status_code``, the server's ``message``, its ``request_id`` and the request ``path``.

    Example::

        err.status_code, err.request_id  # -> (401, "0c6f...")
    """

    #: The status this class stands for; ``None`` on classes covering a range.
    status: ClassVar[int | None] = None

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        method: str,
        path: str,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.method = method
        self.path = path
        self.request_id = request_id
        self.retry_after = retry_after
        rid = f" (requestId={request_id})" if request_id else ""
        super().__init__(f"CoinStats {method} {path} answered {status_code}: {message}{rid}")


class CoinStatsBadRequestError(CoinStatsAPIError):
    """400: CoinStats rejected the request's parameters or body."""

    status = 400


class CoinStatsUnauthorizedError(CoinStatsAPIError):
    """401: the API key is invalid, or an exchange rejected the connection's credentials."""

    status = 401


class CoinStatsForbiddenError(CoinStatsAPIError):
    """403: the plan does not include this resource."""

    status = 403


class CoinStatsNotFoundError(CoinStatsAPIError):
    """404: unknown portfolio or path."""

    status = 404


class CoinStatsCreditsExhaustedError(CoinStatsAPIError):
    """406: the account's credits are used up; it lasts until the plan renews, so never retried."""

    status = 406


class CoinStatsNotSyncedError(CoinStatsAPIError):
    """409 "Transactions not synced": the portfolio is still syncing. Means "not yet", not failure."""

    status = 409


class CoinStatsRateLimitedError(CoinStatsAPIError):
    """429: too many requests. Retried after ``retry_after`` seconds when the server says so."""

    status = 429
    retryable = True


class CoinStatsServerError(CoinStatsAPIError):
    """500/502/503/504: a passing server fault, retried. Other 5xx (e.g. 501) stay plain API errors."""

    retryable = True


class CoinStatsInvalidResponseError(CoinStatsAPIError):
    """A 2xx whose body is not complete JSON (truncated or not JSON at all). Retryable."""

    retryable = True


class CoinStatsRedirectError(CoinStatsAPIError):
    """A 3xx: CoinStats (or something posing as it) sent the request elsewhere. Never followed.

    Following would send the API key header, and for a 307/308 the exchange credentials in the
    body, to another host. Not retried: the same request gets the same redirect. ``location`` is
    the target's origin (scheme, host, port) only, never its path or query, which could carry a
    token.

    Example::

        err.status_code, err.location  # -> (307, "https://elsewhere.example:8443")
    """

    def __init__(self, status_code: int, message: str, *, method: str, path: str, location: str | None = None) -> None:
        super().__init__(status_code, message, method=method, path=path)
        self.location = location


class CoinStatsPaginationError(CoinStatsError):
    """A paginated read stopped because it would never end: a page repeated the previous one
    (the server ignores ``page``), or the hard page limit was reached.

    Permanent: sending the same pages again would spend the same credits for the same result.

    Example::

        CoinStatsPaginationError("GET /portfolio/transactions", 2, "page 2 repeats page 1")
    """

    def __init__(self, request: str, page: int, problem: str) -> None:
        self.request = request
        self.page = page
        self.problem = problem
        super().__init__(f"CoinStats {request}: pagination stopped at page {page}: {problem}")


class CoinStatsBudgetExceededError(CoinStatsError):
    """A call was refused before it was sent: it would pass the task's credit budget, or the plan
    has fewer credits left than the task requires (``min_remaining_credits``).

    Permanent: running the task again would hit the same budget. Nothing was sent and nothing was
    charged for the refused call. ``spent``, ``budget`` and ``cost`` hold the numbers the message names.

    Example::

        CoinStatsBudgetExceededError.for_call("GET /portfolio/transactions", spent=12, budget=14, cost=4)
    """

    def __init__(self, message: str, *, spent: int, budget: int, cost: int) -> None:
        self.spent = spent
        self.budget = budget
        self.cost = cost
        super().__init__(message)

    @classmethod
    def for_call(cls, request: str, *, spent: int, budget: int, cost: int) -> CoinStatsBudgetExceededError:
        """The next call (``cost`` credits) would take ``spent`` past ``budget``."""
        return cls(
            f"CoinStats {request} refused before sending: it costs {cost} credits and this task has "
            f"spent {spent} of its budget of {budget} credits (max_credits / max_credits_per_task)",
            spent=spent,
            budget=budget,
            cost=cost,
        )

    @classmethod
    def for_plan(cls, *, remaining: int, minimum: int) -> CoinStatsBudgetExceededError:
        """The plan has ``remaining`` credits, fewer than the ``minimum`` the task requires."""
        return cls(
            f"CoinStats plan has {remaining} credits left, below min_remaining_credits={minimum}: "
            "stopped before spending any",
            spent=0,
            budget=remaining,
            cost=minimum,
        )


#: Errors that a retry of the Airflow task cannot fix: bad input, a wrong key, plan limits,
#: exhausted credits, an unknown portfolio, a redirect, endless pagination, a credit budget.
#: Operators fail at once on these instead of spending task retries. (A 409 is not here: it means
#: "not yet", and only waiting fixes it.)
PERMANENT_ERRORS: tuple[type[CoinStatsError], ...] = (
    CoinStatsBadRequestError,
    CoinStatsNotFoundError,
    CoinStatsUnauthorizedError,
    CoinStatsForbiddenError,
    CoinStatsCreditsExhaustedError,
    CoinStatsRedirectError,
    CoinStatsPaginationError,
    CoinStatsBudgetExceededError,
    CoinStatsValidationError,
    CoinStatsConfigError,
)
