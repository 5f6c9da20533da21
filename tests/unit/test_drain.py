"""llmgate/drain.py: nothing changes until the drain starts; then every HTTP response closes its connection."""

from __future__ import annotations

import asyncio
from typing import Any

from llmgate.drain import closing_connections, on_drain, start_draining


async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_draining_app_says_connection_close_on_every_response() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(closing_connections(answer)({"type": "http"}, None, send))
    assert sent[0]["headers"] == [(b"content-type", b"text/plain"), (b"connection", b"close")]
    assert sent[1] == {"type": "http.response.body", "body": b"ok"}


def test_the_drain_calls_what_is_registered_and_nothing_unregistered() -> None:
    calls: list[str] = []
    forget_a = on_drain(lambda: calls.append("a"))
    forget_b = on_drain(lambda: calls.append("b"))
    forget_b()
    start_draining()
    forget_a()
    start_draining()
    assert calls == ["a"]
