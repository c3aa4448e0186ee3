"""Test-only DAG: a task carrying the portfolio link whose ``portfolio_url`` XCom comes from the run's conf.

It stands for anything other than a connect operator pushing under that key, to prove the link
itself refuses what is not an ``http(s)://`` URL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, BaseOperator

from airflow_provider_coinstats.links.portfolio import PORTFOLIO_URL_XCOM_KEY, CoinStatsPortfolioLink


class PushPortfolioUrl(BaseOperator):
    """Push ``url`` under the portfolio link's XCom key."""

    operator_extra_links = (CoinStatsPortfolioLink(),)
    template_fields = ("url",)

    def __init__(self, *, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url

    def execute(self, context: Any) -> None:
        context["ti"].xcom_push(key=PORTFOLIO_URL_XCOM_KEY, value=self.url)


with DAG(
    dag_id="cs_link_pushed_url", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, params={"url": ""}
) as cs_link_pushed_url:
    PushPortfolioUrl(task_id="push", url="{{ params.url }}")
