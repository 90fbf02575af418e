"""A headless Chromium for the results pages: Debian's ``chromium`` driven by Playwright (never its own builds).

Screenshots go to ``test-output/ui/`` at the repo root (gitignored); each test prints the paths it wrote.
Without a browser the tests skip, except under CI (``CI`` set), where a missing browser is a failure:
``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.conftest import REPO_ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SCREENSHOTS = REPO_ROOT / "test-output" / "ui"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (make test installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API runs an event loop in this thread until it closes, and tests after the
    pages' own (``asyncio.run``) need the thread free of it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    executable = os.environ.get("INTERP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _unavailable("no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """One page with every console error and uncaught exception it raised, and screenshots under its test's name."""

    page: Page
    name: str
    errors: list[str] = field(default_factory=list)

    def screenshot(self, label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def type_key(self, base_url: str, key: str) -> None:
        """Type the API key into the page header's box as a person does; the tab keeps it (sessionStorage).

        The page's first load, before it has a key, is refused (401) by design, and Chromium logs each refused
        request: those lines are no error of the page's and are dropped.
        """
        self.page.goto(f"{base_url}/ui/")
        self.page.fill("#api-key", key)
        self.page.click("#key-form button")
        self.page.wait_for_selector("#key-state:has-text('key set')")
        self.page.wait_for_load_state("networkidle")
        self.errors[:] = [e for e in self.errors if "status of 401" not in e]

    def open_job(self, base_url: str, job_id: str, key: str | None = None) -> None:
        """The job's page; with ``key``, typed into the page first."""
        if key is not None:
            self.type_key(base_url, key)
        self.page.goto(f"{base_url}/ui/jobs/{job_id}")

    def wait_drawn(self, kind: str, timeout_s: float = 60) -> None:
        """Until the job's result is drawn (the page marks the result with its kind)."""
        self.page.wait_for_selector(f'#job-result[data-kind="{kind}"]', timeout=timeout_s * 1000)


def _collect(tab: Tab, page: Page) -> None:
    def on_console(message: Any) -> None:
        if message.type == "error":
            tab.errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))


@pytest.fixture
def tab(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    callspec = getattr(request.node, "callspec", None)
    opened = Tab(page, callspec.id if callspec else request.node.originalname.removeprefix("test_"))
    _collect(opened, page)
    yield opened
    context.close()
