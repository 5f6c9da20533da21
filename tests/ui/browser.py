"""The admin UI in headless Chromium (Debian's `chromium`, driven by Playwright; no browser download): a real
llmgate server with the upstream double, every page checked by axe-core, screenshots on request."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.servers import Gateway, gateway_env, start_gateway
from tests.upstream_double import run_double

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

MANAGEMENT_TOKEN = "ui-management-token-0123456789"
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"
PAGES = (("overview", "/ui/"), ("projects", "/ui/projects"), ("project-new", "/ui/projects/new"),
         ("tokens", "/ui/tokens"), ("token-new", "/ui/tokens/new"), ("usage", "/ui/usage?group_by=project"),
         ("deployments", "/ui/deployments"), ("configuration", "/ui/config"))


def chromium_path() -> str | None:
    """Debian's chromium, or whatever `chromium` is on PATH."""
    return shutil.which("chromium") or (("/usr/bin/chromium") if os.path.exists("/usr/bin/chromium") else None)


@contextlib.contextmanager
def ui_gateway() -> Iterator[Gateway]:
    """`llmgate serve` with the management API (so the UI) on, usage written to its store, and the double."""
    with run_double() as upstream, start_gateway(gateway_env(upstream, LLMGATE_MANAGEMENT_TOKEN=MANAGEMENT_TOKEN,
                                                             LLMGATE_USAGE_FLUSH_S="0.2")) as gateway:
        yield gateway


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    assert path is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser) -> Page:
    # The UI's Content-Security-Policy forbids inline scripts: bypassed in the tests only, to inject axe-core.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    return context.new_page()


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA rules)."""
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                                         'best-practice']})).violations
              .filter(v => v.impact === 'serious' || v.impact === 'critical')
              .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target)}))""")
    return found


def sign_in(page: Page, url: str, token: str = MANAGEMENT_TOKEN) -> None:
    """Sign in with the keyboard only: the token field has the focus, Enter submits."""
    page.goto(f"{url}/ui/")
    page.get_by_label("Management token").focus()
    page.keyboard.type(token)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def call_v1(url: str, secret: str, model: str = "gpt-4o-mini") -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]}, timeout=10)


def wait_until(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def visit_every_page(page: Page, url: str, screenshots: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Each page: its <h1>, axe-core's serious and critical violations (by page), and a screenshot when asked."""
    violations: dict[str, list[dict[str, Any]]] = {}
    for name, path in PAGES:
        page.goto(f"{url}{path}")
        assert page.locator("h1").count() == 1, f"{path} has no single <h1>"
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        violations[path] = serious_violations(page)
    return violations
