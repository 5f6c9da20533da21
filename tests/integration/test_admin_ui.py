"""The admin UI in a real browser (headless Chromium) against a real `llmgate serve` and the upstream double:
sign in, create a project and a token through the forms, use the token on /v1, see it counted on Usage and the
Overview, revoke it, sign out; axe-core on every page. Skips, saying why, only outside CI without chromium."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from tests.servers import Gateway
from tests.ui.browser import (
    call_v1,
    chromium,
    chromium_path,
    new_page,
    serious_violations,
    sign_in,
    ui_gateway,
    visit_every_page,
    wait_until,
)

if chromium_path() is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("the browser tests need Debian's chromium in CI (.ci/run installs it)")
    pytest.skip("chromium is not installed (apt-get install chromium): the browser tests need it",
                allow_module_level=True)

from playwright.sync_api import Browser, Page, expect


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with ui_gateway() as gw:
        yield gw


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = new_page(browser)
    yield opened
    opened.context.close()


def test_a_bad_token_at_sign_in_shows_an_error_not_a_500(gateway: Gateway, page: Page) -> None:
    page.goto(f"{gateway.url}/ui/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to llmgate")
    page.get_by_label("Management token").fill("not-the-token")
    with page.expect_response(lambda r: r.url.endswith("/ui/sign-in")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    expect(page.get_by_text("Incorrect management token.")).to_be_visible()
    expect(page.get_by_label("Management token")).to_have_attribute("aria-invalid", "true")


def create_project(page: Page, name: str) -> None:
    page.get_by_role("link", name="Projects", exact=True).click()
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Allowed models").fill("gpt-4o-mini")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("status")).to_have_text("Project created.")


def create_token(page: Page, project: str) -> str:
    page.get_by_role("link", name="Tokens", exact=True).click()
    page.get_by_role("link", name="New token").click()
    page.get_by_label("Project", exact=True).select_option(label=project)
    page.get_by_label("Requests per minute").fill("600")
    page.get_by_label("Max requests").fill("100")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Token created")
    secret = page.get_by_label("Secret", exact=True).input_value()
    assert re.fullmatch(r"lg-[A-Za-z0-9_\-]{40,}", secret)
    expect(page.get_by_role("button", name="Copy")).to_be_visible()  # shown by ui.js
    return secret


def test_the_whole_life_of_a_token_through_the_ui(gateway: Gateway, page: Page) -> None:
    sign_in(page, gateway.url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    create_project(page, "browser-team")
    secret = create_token(page, "browser-team")
    assert call_v1(gateway.url, secret).status_code == 200

    def usage_counts_it() -> bool:
        page.goto(f"{gateway.url}/ui/usage?group_by=project")
        row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="proj_", exact=False))
        return row.count() == 1 and row.get_by_role("cell").first.inner_text() == "1"

    assert wait_until(usage_counts_it), "the /v1 request never showed on the Usage page"
    expect(page.locator("svg.chart")).to_have_count(1)
    page.get_by_role("link", name="Overview").click()
    requests_tile = page.locator("dl.tiles > div").filter(has_text="Requests").locator("dd")
    expect(requests_tile).to_have_text("1")
    expect(page.get_by_role("table").filter(has_text="browser-team")).to_have_count(1)  # top projects

    page.get_by_role("link", name="Tokens", exact=True).click()
    row = page.get_by_role("row").filter(has_text=secret[-4:])
    expect(row.get_by_role("cell").nth(2)).to_have_text("1 / 100")  # usage against its max_requests
    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    assert call_v1(gateway.url, secret).status_code == 401

    page.get_by_role("link", name="Sign out").click()
    page.goto(f"{gateway.url}/ui/tokens")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to llmgate")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_every_page_has_one_h1_and_no_serious_accessibility_violation(gateway: Gateway, page: Page) -> None:
    console_errors: list[str] = []  # a script or style the Content-Security-Policy refused, a script error
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{gateway.url}/ui/sign-in")
    found = {"/ui/sign-in": serious_violations(page)}
    sign_in(page, gateway.url)
    found |= visit_every_page(page, gateway.url)
    assert {path: v for path, v in found.items() if v} == {}
    assert console_errors == []


def test_htmx_updates_the_usage_results_in_place(gateway: Gateway, page: Page) -> None:
    sign_in(page, gateway.url)
    page.get_by_role("link", name="Usage").click()
    page.get_by_label("Group by").select_option("model")
    with page.expect_request(lambda r: r.headers.get("hx-request") == "true") as swapped:
        page.get_by_role("button", name="Show").click()
    assert "group_by=model" in swapped.value.url
    expect(page).to_have_url(re.compile(r"/ui/usage\?.*group_by=model"))  # pushed into the history
    expect(page.locator("#results")).to_have_count(1)


def test_the_keyboard_reaches_the_navigation(gateway: Gateway, page: Page) -> None:
    sign_in(page, gateway.url)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    reached = []
    for _ in range(7):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent"))
    assert reached == ["Overview", "Projects", "Tokens", "Usage", "Deployments", "Configuration", "Sign out"]
    page.keyboard.press("Enter")  # on Sign out
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to llmgate")
