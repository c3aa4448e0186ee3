"""The permanent-error boundary: which provider errors end a task without its Airflow retries.

Shared by the operators and the transfers (neither may import the other). It sits below them with
the Airflow import shims, and imports nothing else of the package but :mod:`.exceptions`.

Example::

    with fail_fast_on_permanent_errors():
        hook.get_portfolio_coins(portfolio_id)  # a 401 fails the task at once; a 503 is retried
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_coinstats._compat import AirflowFailException
from airflow_provider_coinstats.exceptions import PERMANENT_ERRORS


@contextmanager
def fail_fast_on_permanent_errors() -> Iterator[None]:
    """Errors no retry can fix (bad input, wrong key, plan, credits) fail without task retries.

    They are re-raised as ``AirflowFailException`` with the same message (which never holds a
    secret); every other error passes through, so Airflow's retries apply to it.
    """
    try:
        yield
    except PERMANENT_ERRORS as error:
        raise AirflowFailException(str(error)) from None
