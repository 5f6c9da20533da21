"""The two API dialects `/v1` speaks, as data: how an error of llmgate's own looks, and how one ends a stream
that has started. OpenAI's everywhere but `/v1/messages*`, which Anthropic's SDKs call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

from llmgate.errors import GatewayError, anthropic_error_response, error_response
from llmgate.proxy.asgi import JSON_CONTENT_TYPE, Headers, Send, send_response
from llmgate.proxy.streaming import openai_error_frame


def anthropic_error_frame(body: bytes) -> bytes:
    """Anthropic's in-stream `error` event around an error body (OpenAI-shaped bodies are translated)."""
    if b'"type":"error"' not in body:
        from llmgate.translate.errors import anthropic_error_from_openai  # only a failing stream pays for it

        body = anthropic_error_from_openai(500, body)[1]
    return b"event: error\ndata: " + body + b"\n\n"


class Dialect(NamedTuple):
    """How a caller of one API expects llmgate's own errors."""

    name: Literal["openai", "anthropic"]
    error_response: Callable[[GatewayError], tuple[int, bytes]]
    """An error as its status and JSON body."""
    error_frame: Callable[[bytes], bytes]
    """An error body as the SSE frame that ends a stream already started."""


OPENAI = Dialect("openai", error_response, openai_error_frame)
ANTHROPIC = Dialect("anthropic", anthropic_error_response, anthropic_error_frame)


async def send_error(send: Send, dialect: Dialect, error: GatewayError, request_id: bytes) -> None:
    """Answer with `error` in `dialect`'s shape, with its headers (`retry-after`, `allow`, ...)."""
    status, body = dialect.error_response(error)
    headers: Headers = [JSON_CONTENT_TYPE, (b"x-request-id", request_id)]
    headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items())
    await send_response(send, status, headers, body)
