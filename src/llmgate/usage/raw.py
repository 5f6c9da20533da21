"""The raw body log (`LLMGATE_RAW_LOG=1`): every /v1 request and its answer in full, one JSON line each.

A line: the usage event's ids and facts, the request's headers (never `authorization`, `x-api-key`, `api-key`,
`cookie` or any other credential header), the request body and the response body (a stream: every chunk as it
came, concatenated; for a translated request, the upstream's answer in its own dialect). Bodies that are JSON
are embedded as JSON, others as text. Secrets are masked wherever they appear (`sk-****abcd`): the keys
llmgate knows (master key, management token, provider keys) and anything shaped like an API key (`sk-...`,
`lg-...`). Lines are captured while the bus builds the events (its background task) and written by this
sink to a size-rotated file (usage/sinks/jsonl.py).

An upstream's error answer is kept with its body; an error llmgate answers itself (401, 404, ...) with its status.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from llmgate.log import mask_secret
from llmgate.usage.event import Exchange, UsageEvent
from llmgate.usage.sinks.jsonl import RotatingFile

_encode = msgspec.json.Encoder().encode
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie",
                            "set-cookie", "x-goog-api-key"})
_KEY_SHAPE = re.compile(rb"\b(?:sk|lg)-[A-Za-z0-9_\-]{16,}")


class RawRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    request_id: str
    time: float
    method: str
    endpoint: str
    status: int
    stream: bool = False
    model: str | None = None
    deployment: str | None = None
    request_headers: dict[str, str] = {}
    request_body: Any = None
    """The body as JSON (msgspec.Raw) or, when it is not JSON, as text."""
    response_body: Any = None


class RawLogSink:
    """Captures exchanges (`capture`, called by the event builder) and writes them out with each batch."""

    name = "raw"

    def __init__(self, path: str, max_bytes: int, backups: int, known_secrets: Iterable[str] = ()) -> None:
        self.file = RotatingFile(path, max_bytes, backups, fsync=False)
        self._secrets = sorted({s.encode() for s in known_secrets if s and len(s) >= 8}, key=len, reverse=True)
        self._lines: list[bytes] = []

    def capture(self, exchange: Exchange, event: UsageEvent) -> None:
        meter = exchange.meter
        record = RawRecord(
            request_id=event.request_id, time=event.time, method=event.method, endpoint=event.endpoint,
            status=event.status, stream=event.stream, model=event.model, deployment=event.deployment,
            request_headers={name: self.mask_text(value) for name, value in exchange.request_headers or ()
                             if name not in SECRET_HEADERS},
            request_body=self._body(exchange.request_body),
            response_body=self._body(meter.body if meter is not None else None),
        )
        self._lines.append(_encode(record) + b"\n")

    async def write(self, events: Sequence[UsageEvent]) -> None:
        lines, self._lines = self._lines, []
        if lines:
            await asyncio.to_thread(self.file.write_lines, lines)

    async def close(self) -> None:
        if self._lines:
            await self.write(())

    def mask(self, data: bytes) -> bytes:
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, mask_secret(secret.decode()).encode())
        return _KEY_SHAPE.sub(lambda m: mask_secret(m.group().decode()).encode(), data)

    def mask_text(self, value: str) -> str:
        return self.mask(value.encode()).decode()

    def _body(self, body: bytes | None) -> msgspec.Raw | str | None:
        if not body:
            return None
        masked = self.mask(body)
        try:
            msgspec.json.decode(masked)
        except msgspec.DecodeError:
            return masked.decode("utf-8", "replace")
        return msgspec.Raw(masked)
