"""routes/front.py: which requests take the shortcut to /v1, and what /v1 then sees."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmgate.routes.front import v1_first
from tests.inprocess.gateway import Gateway


def _dispatch(scope: dict[str, Any]) -> tuple[str, str]:
    """Which app served `scope`, and the path it saw."""
    seen: list[tuple[str, str]] = []

    def app(name: str) -> Any:
        async def serve(scope: dict[str, Any], receive: Any, send: Any) -> None:
            seen.append((name, scope["path"]))
        return serve

    asyncio.run(v1_first(app("v1"), app("litestar"))(scope, None, None))
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize(("path", "relative"), [
    ("/v1/chat/completions", "/chat/completions"),
    ("/v1/chat/completions/", "/chat/completions/"),
    ("/v1/models/org/model-1", "/models/org/model-1"),
    ("/v1", ""),
    ("/v1/", "/"),
])
def test_v1_paths_go_straight_to_v1_relative_to_it(path: str, relative: str) -> None:
    assert _dispatch({"type": "http", "path": path, "root_path": ""}) == ("v1", relative)


@pytest.mark.parametrize("scope", [
    {"type": "http", "path": "/health"},
    {"type": "http", "path": "/manage/projects"},
    {"type": "http", "path": "/v10/chat/completions"},  # not the /v1 mount
    {"type": "http", "path": "/v1//chat/completions"},  # Litestar normalises it
    {"type": "http", "path": "/v1/chat/completions", "root_path": "/api"},  # Litestar strips it
    {"type": "websocket", "path": "/v1/realtime"},
])
def test_everything_else_goes_to_litestar_unchanged(scope: dict[str, Any]) -> None:
    assert _dispatch(scope) == ("litestar", scope["path"])


@pytest.mark.parametrize("path", ["/v1/chat/completions/", "/v1//chat/completions", "//v1/chat/completions"])
def test_trailing_and_double_slashes_are_the_same_route(double_gateway: Gateway, path: str) -> None:
    """Through the whole app (the shortcut, or Litestar's router for paths it normalises), in process."""
    response = double_gateway.post(path, json={"model": "m"})
    assert response.status_code == 200
