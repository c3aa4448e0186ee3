"""The Airflow UI in a real browser: Playwright for Python driving Debian's chromium.

No browser is downloaded: ``.ci/chromium.sh`` prints the path of Debian's ``chromium`` (installing
the package with apt when it is missing) and Playwright launches that executable. Every step waits
for what the page shows (an element, a toast), never for a fixed time.

Example::

    with AirflowUi.open(api_url, user, password, shots=tmp_path) as ui:
        fields = ui.add_connection("coinstats_ui", "CoinStats", {"host": url, "password": key})
        title, message = ui.test_connection("coinstats_ui")
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.deployment import ROOT

CHROMIUM_SCRIPT = ROOT / ".ci" / "chromium.sh"
#: Small enough for a committed PNG, wide enough for Airflow's two-pane pages.
VIEWPORT = {"width": 1200, "height": 720}
TIMEOUT_MS = 60_000  # the UI shares 2 cores with a busy deployment

#: Each form field's label, its inputs' ``[name, type, value]`` and its helper text.
FORM_FIELDS_JS = """dialog => [...dialog.querySelectorAll('[data-scope=field][data-part=root]')].map(root => ({
  label: (root.querySelector('label') || {}).innerText || null,
  inputs: [...root.querySelectorAll('input, textarea')]
    .filter(i => i.name).map(i => [i.name, i.type, i.value]),
  helper: (root.querySelector('[data-part=helper-text]') || {}).innerText || null}))"""


def chromium_path() -> str:
    """Debian's chromium executable (installed with apt by .ci/chromium.sh when missing)."""
    done = subprocess.run([str(CHROMIUM_SCRIPT)], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f".ci/chromium.sh failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout.strip()


@dataclass
class FormField:
    """One field of the connection form as the browser shows it."""

    label: str
    inputs: list[tuple[str, str, str]]  # (name, type, value)
    helper: str | None

    def value(self) -> str | None:
        return self.inputs[0][2] if self.inputs else None

    def input_type(self) -> str | None:
        return self.inputs[0][1] if self.inputs else None


class AirflowUi:
    """A logged-in browser page on the Airflow UI; screenshots go to ``shots``."""

    def __init__(self, page: Any, base_url: str, shots: Path) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.shots = shots

    @classmethod
    @contextmanager
    def open(cls, base_url: str, username: str, password: str, shots: Path) -> Iterator[AirflowUi]:
        from playwright.sync_api import sync_playwright

        shots.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            # --no-sandbox: CI runs as root, where chromium refuses its own sandbox.
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                page.set_default_timeout(TIMEOUT_MS)
                ui = cls(page, base_url, shots)
                ui.login(username, password)
                yield ui
            finally:
                browser.close()

    def login(self, username: str, password: str) -> None:
        """Through SimpleAuthManager's login page, as a person would."""
        self.page.goto(f"{self.base_url}/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/auth/login" not in url)

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    # -- connections --------------------------------------------------------------------------

    def add_connection(
        self, conn_id: str, type_name: str, values: Mapping[str, str], screenshot: str | None = None
    ) -> dict[str, FormField]:
        """Admin -> Connections -> Add: pick the type, fill ``values`` by input name, save.

        Returns the form's fields by label as shown before saving (Extra Fields opened), so the
        caller can compare titles, defaults and input types with the form definition.
        """
        page = self.page
        page.goto(f"{self.base_url}/connections")
        page.get_by_role("button", name="Add Connection").click()
        dialog = page.get_by_role("dialog")
        dialog.locator("input[name=connection_id]").fill(conn_id)
        # The type picker is a react-select: type into its combobox and take the match.
        dialog.get_by_role("combobox").first.focus()
        page.keyboard.type(type_name)
        page.keyboard.press("Enter")
        for name, value in values.items():
            dialog.locator(f"input[name={name}]").fill(value)
        if screenshot:
            self.screenshot(screenshot)  # Standard Fields: Base URL and the masked API key
        dialog.get_by_role("button", name="Extra Fields", exact=True).click()
        dialog.locator("[name^=element_]").last.wait_for()
        fields = {
            f["label"].split("\n")[0].strip(): FormField(
                f["label"].strip(), [tuple(i) for i in f["inputs"]], f["helper"]
            )
            for f in dialog.evaluate(FORM_FIELDS_JS)
            if f["label"]
        }
        if screenshot:
            # Tall enough for every extra field at once, then back to the usual size.
            self.page.set_viewport_size({"width": VIEWPORT["width"], "height": 1280})
            self.screenshot(f"{screenshot}-extra")
            self.page.set_viewport_size(VIEWPORT)  # type: ignore[arg-type]
        dialog.get_by_role("button", name="Save").click()
        dialog.wait_for(state="hidden")
        page.get_by_role("cell", name=conn_id, exact=True).wait_for()
        return fields

    def test_connection(self, conn_id: str) -> tuple[str, str, str]:
        """Click the connection's Test button in the list: the toast's title and message, and
        the body of the API answer behind it (the toast shows only "Bad Request" for a 400)."""
        page = self.page
        page.goto(f"{self.base_url}/connections")
        row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))
        with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as answer:
            row.get_by_role("button", name="Test Connection").click()
        toast = page.locator("[data-scope=toast][data-part=root]").filter(has_text="Test Connection").last
        toast.wait_for()
        title = toast.locator("[data-part=title]").inner_text().strip()
        message = toast.locator("[data-part=description]").inner_text().strip()
        return title, message, answer.value.text()

    # -- DAGs and assets ----------------------------------------------------------------------

    def extra_link(self, dag_id: str, run_id: str, task_id: str, name: str) -> str | None:
        """The ``href`` of a task instance's extra link button (Details tab)."""
        self.page.goto(f"{self.base_url}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/details")
        link = self.page.get_by_role("link", name=name, exact=True)
        link.wait_for()
        href: str | None = link.get_attribute("href")
        return href

    def graph(self, dag_id: str, run_id: str, tasks: int, screenshot: str) -> list[str]:
        """The run's graph with the details panel collapsed; the task names of its nodes."""
        page = self.page
        page.goto(f"{self.base_url}/dags/{dag_id}/runs/{run_id}")
        page.get_by_role("button", name="Show Graph (Press g)").click()
        nodes = page.locator(".react-flow__node")
        nodes.nth(tasks - 1).wait_for()
        page.get_by_role("button", name="Collapse Details Panel").click()
        page.get_by_role("button", name="Fit View").click()
        self.screenshot(screenshot)
        return [n.inner_text().split("\n")[0] for n in nodes.all()]

    def asset_graph(self, asset_name: str, screenshot: str) -> list[str]:
        """The asset's page (its producing and scheduled DAGs in a graph); the node labels."""
        page = self.page
        page.goto(f"{self.base_url}/assets")
        page.get_by_role("link", name=asset_name, exact=True).click()
        nodes = page.locator(".react-flow__node")
        nodes.first.wait_for()
        page.get_by_role("button", name="Fit View").click()
        self.screenshot(screenshot)
        return [n.inner_text().split("\n")[0] for n in nodes.all()]
