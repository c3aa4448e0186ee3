"""Extra link from a connect task to its CoinStats portfolio."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: XCom key under which connect operators push the portfolio URL, right after connecting.
PORTFOLIO_URL_XCOM_KEY = "portfolio_url"

#: CoinStats documents no deep link to one portfolio, so by default the link opens the web app's
#: portfolio page; the connection extra ``portfolio_url_template`` (with ``{portfolio_id}``)
#: overrides it.
DEFAULT_PORTFOLIO_URL = "https://coinstats.app/portfolio/"


def portfolio_url(template: str | None, portfolio_id: str) -> str:
    """Render the portfolio URL from the connection's template, or the default page."""
    if not template:
        return DEFAULT_PORTFOLIO_URL
    return template.replace("{portfolio_id}", portfolio_id)


class CoinStatsPortfolioLink(BaseOperatorLink):
    """ "CoinStats Portfolio" button on connect tasks, read from the task's XCom.

    Example::

        class MyOperator(BaseOperator):
            operator_extra_links = (CoinStatsPortfolioLink(),)
    """

    name = "CoinStats Portfolio"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=PORTFOLIO_URL_XCOM_KEY)
        return str(value) if value else ""
