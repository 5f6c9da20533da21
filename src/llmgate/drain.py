"""The shutdown drain: once a process is stopping (SIGTERM, SIGINT), every response it sends says
`connection: close`, so clients open a new connection (to another instance) for their next request instead of
reusing one that is about to be closed under them. Requests that still arrive on an open connection meanwhile
are served, with the same header. New connections are not: granian closes its listener as the drain starts,
so they are refused at once (tests/faults/test_drain.py), none left waiting for the exit.

The cost falls on the drain alone: starting it swaps each registered app's ASGI handler for one that adds the
header; until then nothing runs per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from llmgate.proxy.asgi import ASGIApp, Message, Receive, Scope, Send

_CLOSE = (b"connection", b"close")
_on_drain: list[Callable[[], None]] = []
"""What to do when the drain starts: one entry per app serving in this process (registered by its lifespan)."""


def on_drain(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` when the drain starts; returns the function that unregisters it."""
    _on_drain.append(callback)
    return lambda: _on_drain.remove(callback) if callback in _on_drain else None


def start_draining() -> None:
    """The process is stopping: from now on every response closes its connection."""
    for callback in list(_on_drain):
        callback()


def closing_connections(app: Callable[..., Awaitable[None]]) -> ASGIApp:
    """`app` (an ASGI app: ours or Litestar's handler) with `connection: close` added to every HTTP response."""

    async def closing(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: Any = message.get("headers", ())
                message = {**message, "headers": [*headers, _CLOSE]}
            await send(message)

        await app(scope, receive, send_closing)

    return closing
