"""Upstream error responses rewritten into the caller's dialect, status included.

OpenAI: `{"error": {"message", "type", "param", "code"}}`. Anthropic: `{"type": "error", "error": {"type",
"message"}}` (https://docs.anthropic.com/en/api/errors). The status is kept, except Anthropic's 529
(overloaded), which OpenAI clients and HTTP proxies do not know: it becomes 503, which they retry.
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmgate.errors import anthropic_error_type

_encode = msgspec.json.Encoder().encode
_MAX_RAW_MESSAGE = 500


def _decode(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None


def _raw_message(body: bytes, status: int) -> str:
    text = body[:_MAX_RAW_MESSAGE].decode("utf-8", "replace").strip()
    return text or f"The upstream answered {status} with an empty body."


def openai_error_from_anthropic(status: int, body: bytes) -> tuple[int, bytes]:
    """An Anthropic error response → (status, OpenAI error body)."""
    decoded = _decode(body)
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        message, kind = error["message"], str(error.get("type") or anthropic_error_type(status))
    else:
        message, kind = _raw_message(body, status), anthropic_error_type(status)
    openai_status = 503 if status == 529 else status
    return openai_status, _encode({"error": {"message": message, "type": kind, "param": None, "code": None}})


def anthropic_error_from_openai(status: int, body: bytes) -> tuple[int, bytes]:
    """An OpenAI(-compatible) error response → (status, Anthropic error body)."""
    decoded = _decode(body)
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        message = error["message"]
    elif isinstance(error, str):  # some OpenAI-compatible servers send {"error": "text"}
        message = error
    else:
        message = _raw_message(body, status)
    return status, _encode({"type": "error", "error": {"type": anthropic_error_type(status), "message": message}})


def openai_stream_error(message: str, kind: str = "api_error") -> bytes:
    """An error event that ends an OpenAI stream (no [DONE]): the SDK raises it as APIError."""
    return b"data: " + _encode({"error": {"message": message, "type": kind, "param": None, "code": None}}) + b"\n\n"


def anthropic_stream_error(message: str, kind: str = "api_error") -> bytes:
    """Anthropic's in-stream `error` event (e.g. overloaded_error mid-stream); the SDK raises it."""
    return b"event: error\ndata: " + _encode({"type": "error", "error": {"type": kind, "message": message}}) + b"\n\n"
