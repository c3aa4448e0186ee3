"""The provider's own Airflow configuration section, ``[coinstats]``, declared once.

``get_provider_info`` publishes these options (so ``airflow config list`` shows them with their
defaults) and :mod:`airflow_provider_coinstats.sync_probe` reads them. Like
``get_provider_info``, this module imports nothing: ProvidersManager loads it in every Airflow
process.

Example::

    AIRFLOW__COINSTATS__MIN_POLL_INTERVAL=0.1  # let tests against the sandbox poll fast
"""

from __future__ import annotations

from typing import Any, Final

SECTION: Final = "coinstats"

#: Default floor, in seconds, for a sensor's ``poke_interval`` and a connect operator's
#: ``poll_interval``. CoinStats' free tier allows 2 requests per second per key, and every poll
#: costs up to 4 credits (the default probe): a faster loop only spends credits, and two of them
#: together would already hit the rate limit.
MIN_POLL_INTERVAL: Final = 1.0

#: Default minimum, in seconds, between deferring and the trigger's first poll. When a task
#: defers, its worker process reports the deferring attempt to the executor as "success" only
#: once it has exited, and the scheduler reads that report on a later loop. If the trigger fires
#: first, the scheduler has already queued the resumed attempt, takes the late report as a state
#: mismatch and fails the task (apache/airflow 66374, 67287, 71580, 72716). Reports show that
#: late event 3 to 6.5 s after deferral on healthy deployments (5 s in our own deployment run);
#: 10 s is twice the middle of that range. A loaded scheduler can be slower (67287: 27 s): raise
#: the setting there.
MIN_FIRST_POLL_DELAY: Final = 10.0

#: option -> (default seconds, description), the single declaration of the section.
OPTIONS: Final[dict[str, tuple[float, str]]] = {
    "min_poll_interval": (
        MIN_POLL_INTERVAL,
        "Smallest poke_interval (CoinStatsPortfolioSyncSensor) and poll_interval (connect operators) "
        "in seconds; DAGs asking for less fail to parse. CoinStats' free tier allows 2 requests/s per key.",
    ),
    "min_first_poll_delay": (
        MIN_FIRST_POLL_DELAY,
        "Seconds between a task deferring and its trigger's first poll, so the scheduler has processed "
        "the deferring attempt's executor event before the trigger can fire (an Airflow 3 race).",
    ),
}


def provider_config() -> dict[str, Any]:
    """The ``config`` entry of the provider info (the shape of Apache providers' ``provider.yaml``)."""
    return {
        SECTION: {
            "description": "Timing floors of the CoinStats provider's waits.",
            "options": {
                name: {
                    "description": description,
                    "version_added": "0.2.0",
                    "type": "float",
                    "example": None,
                    "default": f"{default:g}",
                }
                for name, (default, description) in OPTIONS.items()
            },
        }
    }
