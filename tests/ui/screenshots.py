"""Screenshots of every admin UI page, with some traffic to show: `python -m tests.ui.screenshots OUTDIR`
(from the repository's root; needs Debian's chromium). Starts its own llmgate and upstream double."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from tests.ui.browser import (
    MANAGEMENT_TOKEN,
    call_v1,
    chromium,
    new_page,
    sign_in,
    ui_gateway,
    visit_every_page,
    wait_until,
)


def seed(url: str) -> None:
    """Two projects, three tokens (one revoked), a few /v1 requests, one refused."""
    manage = httpx.Client(base_url=f"{url}/manage", headers={"authorization": f"Bearer {MANAGEMENT_TOKEN}"})
    secrets = []
    for name, models in (("search-team", ["gpt-4o-mini"]), ("support-bot", [])):
        project = manage.post("/projects", json={"name": name, "description": f"The {name}'s apps",
                                                 "allowed_models": models}).json()
        for limits in ({"name": "prod", "rpm_limit": 600, "max_requests": 10_000}, {"name": "ci", "max_requests": 50}):
            secrets.append(manage.post("/tokens", json={"project_id": project["id"], **limits}).json()["secret"])
    for index, secret in enumerate(secrets[:3]):
        for _ in range(3 + 4 * index):
            call_v1(url, secret)
    call_v1(url, secrets[0], model="not-allowed")
    token_id = manage.get("/tokens").json()[-1]["id"]
    manage.delete(f"/tokens/{token_id}")
    wait_until(lambda: manage.get("/usage").json()["data"][0]["requests"] >= 22)


def main(outdir: str) -> None:
    out = Path(outdir)
    with ui_gateway() as gateway, chromium() as browser:
        seed(gateway.url)
        page = new_page(browser)
        sign_in(page, gateway.url)
        visit_every_page(page, gateway.url, out)
        page.goto(f"{gateway.url}/ui/tokens")
        page.get_by_role("row").nth(1).get_by_role("link").click()
        page.screenshot(path=str(out / "token.png"), full_page=True)
        page.goto(f"{gateway.url}/ui/tokens/new")
        page.get_by_label("Max requests").fill("1000")
        page.get_by_role("button", name="Create token").click()
        page.screenshot(path=str(out / "token-created.png"), full_page=True)
        page.goto(f"{gateway.url}/ui/sign-out")
        page.screenshot(path=str(out / "sign-in.png"))
    print("\n".join(sorted(str(p) for p in out.glob("*.png"))))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.ui.screenshots OUTDIR")
    main(sys.argv[1])
