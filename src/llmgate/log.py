"""Logging set-up (loguru), request ids on every line, secret masking.

- Format: human on a terminal (colours when stderr is one), JSON lines with `LLMGATE_LOG_JSON=1`:
  `{"time", "level", "message", "request_id", "upstream_request_id", "trace_id", "module", "function", "line",
  "exception", ...bound extras}` (`trace_id` when tracing is on).
- Request ids: the `/v1` handler sets `current_request` to its Exchange once (a ContextVar.set, ~50 ns); a
  patcher reads it when, and only when, a line is logged, so every line logged while serving a request carries
  its request id, and the upstream's once the upstream has answered. Lines outside a request say `-`.
- Secrets: code logs keys masked (`mask_secret`); as a second guard every line passes a `Scrubber` before it
  is written, which masks the secrets llmgate knows (master key, management and metrics tokens, provider keys,
  passwords in database URLs) and anything shaped like an API key (`sk-…`, `lg-…`) or a bearer credential.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import traceback
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

    from llmgate.config import Settings
    from llmgate.usage.event import Exchange

# Libraries that would otherwise log a line per request (httpx at INFO) or chatter at start-up.
_QUIET_LOGGERS = ("httpx", "httpcore", "asyncio", "litestar", "granian.access")

current_request: ContextVar[Exchange | None] = ContextVar("llmgate_current_request", default=None)
"""The request being served in this task (set at the top of the /v1 handler); read only when a line is logged."""

_HUMAN = "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> <cyan>{extra[request_id]}</cyan>"
_KEY_SHAPE = re.compile(r"\b(?:sk|lg)-[A-Za-z0-9_\-]{12,}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)([^\s\"',;<>]{8,})")


def setup_logging(level: str = "INFO", json_lines: bool = False, secrets: Iterable[str] = (),
                  stream: TextIO | None = None) -> None:
    """Send llmgate's logs to `stream` (stderr) at `level`, human or JSON, scrubbed; keep third-party per-request
    logs off."""
    logger.remove()
    out = stream or sys.stderr
    scrubber = Scrubber(secrets)
    common: dict[str, Any] = {"level": level.upper(), "backtrace": False,
                              "diagnose": False}  # diagnose would print local variables, which may hold secrets
    if json_lines:
        logger.add(JsonLines(out, scrubber), format="{message}", **common)
    else:
        logger.add(ScrubbedStream(out, scrubber), format=_human_format, colorize=out.isatty(), **common)
    logger.configure(extra={"request_id": "-"}, patcher=add_request_ids)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def add_request_ids(record: Record) -> None:
    """Loguru patcher: the request id (unless bound already), the upstream's and the trace id, of the request
    being served."""
    exchange = current_request.get()
    if exchange is None:
        return
    extra = record["extra"]
    if extra.get("request_id", "-") == "-":
        extra["request_id"] = exchange.request_id.decode("latin-1")
    if exchange.upstream_request_id is not None and "upstream_request_id" not in extra:
        extra["upstream_request_id"] = exchange.upstream_request_id.decode("latin-1")
    if exchange.trace is not None and "trace_id" not in extra:
        extra["trace_id"] = exchange.trace.trace_id


def _human_format(record: Record) -> str:
    extra = record["extra"]
    upstream = " <dim>upstream {extra[upstream_request_id]}</dim>" if "upstream_request_id" in extra else ""
    trace = " <dim>trace {extra[trace_id]}</dim>" if "trace_id" in extra else ""
    return _HUMAN + upstream + trace + " {message}\n{exception}"


class Scrubber:
    """Masks secrets in a line of text: the known ones, then anything shaped like a key or bearer token."""

    __slots__ = ("_known",)

    def __init__(self, secrets: Iterable[str]) -> None:
        self._known = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._known:
            if secret in text:
                text = text.replace(secret, mask_secret(secret))
        if "sk-" in text or "lg-" in text:
            text = _KEY_SHAPE.sub(lambda m: mask_secret(m.group()), text)
        if "earer" in text:
            text = _BEARER.sub(lambda m: m.group(1) + mask_secret(m.group(2)), text)
        return text


class ScrubbedStream:
    """A loguru sink: formatted lines, scrubbed, to a text stream."""

    def __init__(self, stream: TextIO, scrubber: Scrubber) -> None:
        self._stream, self._scrub = stream, scrubber

    def write(self, message: str) -> None:
        self._stream.write(self._scrub(message))

    def flush(self) -> None:
        self._stream.flush()


class JsonLines:
    """A loguru sink: one JSON object a line (see the module docstring), scrubbed, to a text stream."""

    def __init__(self, stream: TextIO, scrubber: Scrubber) -> None:
        self._stream, self._scrub = stream, scrubber

    def __call__(self, message: Message) -> None:
        record = message.record
        line: dict[str, Any] = {
            "time": record["time"].isoformat(timespec="milliseconds"),
            "level": record["level"].name,
            "message": record["message"],
            **record["extra"],
            "module": record["name"],
            "function": record["function"],
            "line": record["line"],
        }
        error = record["exception"]
        if error is not None:
            line["exception"] = "".join(traceback.format_exception(error.type, error.value, error.traceback))
        self._stream.write(self._scrub(json.dumps(line, ensure_ascii=False, default=str)) + "\n")
        self._stream.flush()


def known_secrets(settings: Settings) -> list[str]:
    """Every secret in the settings: for the log scrubber (and nothing else)."""
    found = [settings.master_key, settings.management_token, settings.metrics_token, settings.usage_http_token,
             settings.secret_key, settings.admin_password, *(key for p in settings.providers for key in p.api_keys),
             *(p.api_key for p in settings.providers)]
    for url in (settings.database_url, settings.redis_url):
        password = url_password(url)
        found.append(password)
    return [s for s in found if s]


def url_password(url: str | None) -> str | None:
    """The password in `scheme://user:password@host/...`, or None."""
    if not url:
        return None
    credentials, at, _ = url.partition("://")[2].rpartition("@")
    return credentials.split(":", 1)[1] if at and ":" in credentials else None


def mask_secret(secret: str | None) -> str:
    """`sk-proj-abcdef…wxyz` → `sk-****wxyz`: enough to tell keys apart, never enough to use one."""
    if not secret:
        return "<none>"
    # The prefix is a key's kind (`sk-`, `lg-`), kept only when that short: a password's first word is not.
    prefix = secret.split("-", 1)[0] + "-" if "-" in secret[:4] else ""
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"{prefix}****{tail}"


def new_request_id() -> str:
    """A fresh request id: 24 hex characters (96 random bits)."""
    # Unique, not secret: `random` (reseeded in forked children by the module itself) costs a third of
    # os.urandom's getrandom syscall.
    return _random_bits(96).to_bytes(12, "big").hex()


_random_bits = random.getrandbits
