"""Virtual tokens through the in-process gateway's management API, for tests that need callers with limits."""

from __future__ import annotations

import time
from typing import Any

from tests.inprocess.gateway import Gateway, Response

MANAGEMENT_TOKEN = "mt-test-0123456789abcdef"
MANAGE = {"authorization": f"Bearer {MANAGEMENT_TOKEN}"}
TOKENS_ENV = {"LLMGATE_MANAGEMENT_TOKEN": MANAGEMENT_TOKEN, "LLMGATE_SECRET_KEY": "s" * 32}
"""A gateway that issues tokens and stores projects' own upstream keys."""


def manage(gw: Gateway, method: str, path: str, **kw: Any) -> Response:
    """`/manage{path}` with the management token."""
    return gw.request(method, f"/manage{path}", headers=MANAGE, auth=False, **kw)


def project(gw: Gateway, **limits: Any) -> dict[str, Any]:
    """A new project (a unique name) with these limits, through the management API."""
    response = manage(gw, "POST", "/projects", json={"name": f"p-{time.monotonic_ns()}", **limits})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def new_token(gw: Gateway, project: dict[str, Any] | None = None, **limits: Any) -> dict[str, Any]:
    """A token (in a new project unless given one) with these limits; its secret is in `["secret"]`."""
    if project is None:
        project = manage(gw, "POST", "/projects", json={"name": f"p-{time.monotonic_ns()}"}).json()
    response = manage(gw, "POST", "/tokens", json={"project_id": project["id"], **limits})
    assert response.status_code == 201, response.text
    token: dict[str, Any] = response.json()
    return token


def chat(gw: Gateway, secret: str | None, model: str = "gpt-4o-mini", **kw: Any) -> Response:
    """A chat completion with this secret (none: no credential at all)."""
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    return gw.post("/v1/chat/completions", json={"model": model, "messages": []}, headers=headers, auth=False, **kw)


def until(gw: Gateway, done: Any, timeout_s: float = 5.0) -> Any:
    """Run the gateway's loop (its write-backs and checks) until `done()` is truthy; its last value."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    while not (result := done()) and time.monotonic() < deadline:
        gw.run(asyncio.sleep(0.05))
    return result
