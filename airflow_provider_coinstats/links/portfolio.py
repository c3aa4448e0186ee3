"""Extra link from a connect task to its CoinStats portfolio.

The link's template comes from the connection (extra ``portfolio_url_template``), which anyone who
may edit connections controls. Only ``http://`` and ``https://`` templates become links: any other
(``javascript:``, ``data:``, ``file:``, a scheme-relative ``//host``) falls back to the default
page with a warning in the task log, and the portfolio id is URL-quoted where it is substituted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

log = logging.getLogger(__name__)

#: XCom key under which connect operators push the portfolio URL, right after connecting.
PORTFOLIO_URL_XCOM_KEY = "portfolio_url"

#: CoinStats documents no deep link to one portfolio, so by default the link opens the web app's
#: portfolio page; the connection extra ``portfolio_url_template`` (with ``{portfolio_id}``)
#: overrides it.
DEFAULT_PORTFOLIO_URL = "https://coinstats.app/portfolio/"

_WEB_SCHEMES = ("http://", "https://")


def is_web_url(url: str) -> bool:
    """True for an absolute ``http(s)://host...`` URL with no whitespace or control characters.

    Browsers drop tabs and newlines inside a scheme (``java\\tscript:``) and leading spaces, so a
    URL holding any of them is refused rather than cleaned.
    """
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return False
    return url.lower().startswith(_WEB_SCHEMES) and bool(urlsplit(url).netloc)


def portfolio_url(template: str | None, portfolio_id: str) -> str:
    """The portfolio URL from the connection's template, or the default page.

    Example::

        portfolio_url("https://example.test/p/{portfolio_id}", "a/b")  # -> "https://example.test/p/a%2Fb"
    """
    if not template:
        return DEFAULT_PORTFOLIO_URL
    if not is_web_url(template):
        log.warning(
            "Connection extra portfolio_url_template is not an http(s):// URL; the CoinStats link uses %s instead",
            DEFAULT_PORTFOLIO_URL,
        )
        return DEFAULT_PORTFOLIO_URL
    return template.replace("{portfolio_id}", quote(portfolio_id, safe=""))


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
        # The XCom is the operator's own, built by portfolio_url; checked again so that nothing
        # else pushed under that key can turn the button into a script or file link.
        return str(value) if value and is_web_url(str(value)) else ""
