"""Raw bodies, headers, chunk boundaries and paths, generated, through the app in process (tests/inprocess):
whatever a client sends, llmgate answers without a 5xx of its own, completely, and every error in the caller's
shape. The upstream answers every request well, so any 5xx would be llmgate's."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.inputs import (
    ANTHROPIC_PATHS,
    OPENAI_PATHS,
    bodies,
    check_answer,
    headers,
    methods,
    paths,
    request_fields,
    upstream,
)
from tests.inprocess.gateway import Gateway, Response, drive, http_scope
from tests.servers import MASTER_KEY

EXAMPLES = settings(max_examples=60, database=None)
MANAGEMENT_TOKEN = "mt-fuzz-v1-0123456789"


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    env = {"LLMGATE_MANAGEMENT_TOKEN": MANAGEMENT_TOKEN, "LLMGATE_AUTH_FAIL_BURST": "0",
           "LLMGATE_BODY_TIMEOUT_S": "5"}
    with Gateway(env=env, upstream=upstream) as gateway:
        yield gateway


def send(gw: Gateway, method: str, path: str, raw_headers: list[tuple[bytes, bytes]], parts: list[bytes],
         disconnect_after: int | None = None) -> Response:
    """One request as a server would hand it over: these headers exactly (no Host added), the body in `parts`, and
    `http.disconnect` after `disconnect_after` of them if given."""
    scope = http_scope(method, path, {})
    scope["headers"] = raw_headers
    if disconnect_after is None:
        return gw.run(drive(gw.app, scope, parts))

    async def cut_short() -> Response:
        response = Response()
        queue = list(parts[:disconnect_after])

        async def receive() -> dict[str, Any]:
            if queue:
                return {"type": "http.request", "body": queue.pop(0), "more_body": True}
            return {"type": "http.disconnect"}

        async def send_(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response.status_code = message["status"]
            else:
                response.chunks.append(message.get("body", b""))
                response.complete = not message.get("more_body", False)

        await gw.app(scope, receive, send_)
        return response

    return gw.run(cut_short())


AUTH = [(b"authorization", f"Bearer {MASTER_KEY}".encode()), (b"host", b"127.0.0.1")]
JSON = [(b"content-type", b"application/json")]


@EXAMPLES
@given(path=st.sampled_from(OPENAI_PATHS + ANTHROPIC_PATHS), body=bodies)
def test_any_body(gw: Gateway, path: str, body: bytes) -> None:
    """Bodies: JSON requests with values of any type, cut, flipped, holding bytes that are no UTF-8, nested past
    any limit, or no JSON at all."""
    response = send(gw, "POST", path, [*AUTH, *JSON, (b"content-length", b"%d" % len(body))], [body])
    check_answer(response, path)


@EXAMPLES
@given(path=st.sampled_from(OPENAI_PATHS + ANTHROPIC_PATHS), extra=headers, with_auth=st.booleans(),
       fields=request_fields)
def test_any_headers(gw: Gateway, path: str, extra: list[tuple[str, bytes]], with_auth: bool,
                     fields: dict[str, Any]) -> None:
    """Headers: repeated, of any bytes (0x80-0xFF too), a wrong content-length, hop-by-hop ones, no Host or two."""
    body = json.dumps(fields).encode()
    raw = [(name.encode(), value) for name, value in extra]
    if with_auth:
        raw = [*AUTH, *raw]
    check_answer(send(gw, "POST", path, raw, [body]), path)


@EXAMPLES
@given(path=st.sampled_from(OPENAI_PATHS + ANTHROPIC_PATHS), fields=request_fields,
       cuts=st.lists(st.integers(0, 400), max_size=5), length=st.sampled_from(["right", "none", "less", "more"]),
       disconnect=st.none() | st.integers(0, 3))
def test_any_framing(gw: Gateway, path: str, fields: dict[str, Any], cuts: list[int], length: str,
                     disconnect: int | None) -> None:
    """Framing: the body in pieces cut anywhere, with a right, missing or wrong content-length, or ended early."""
    body = json.dumps(fields).encode()
    bounds = sorted({0, len(body), *(min(cut, len(body)) for cut in cuts)})
    parts = [body[a:b] for a, b in itertools.pairwise(bounds)] or [b""]
    declared = {"right": len(body), "less": max(0, len(body) - 3), "more": len(body) + 3}.get(length)
    raw = [*AUTH, *JSON] + ([(b"content-length", b"%d" % declared)] if declared is not None else [])
    response = send(gw, "POST", path, raw, parts, disconnect)
    if disconnect is not None and not response.status_code:
        return  # left before an answer: nothing to check but that nothing failed
    check_answer(response, path)


@EXAMPLES
@given(method=methods, path=paths, query=st.text("abc=&%?é", max_size=8), with_auth=st.booleans())
def test_any_path_and_method(gw: Gateway, method: str, path: str, query: str, with_auth: bool) -> None:
    """Paths and methods, on /v1 and off it: 404, 405 (with `allow`), never a 5xx."""
    raw = [*AUTH, (b"x-api-key", MANAGEMENT_TOKEN.encode())] if with_auth else [(b"host", b"127.0.0.1")]
    target = path + ("?" + query if query else "")
    response = send(gw, method, target, raw, [b""])
    assert response.status_code < 500, (method, target, response)
    if path.startswith("/v1"):
        check_answer(response, path)


def test_known_bad_bodies_are_400(gw: Gateway) -> None:
    """What the campaign found, by hand: a model that is no UTF-8, nesting past msgspec's limit, a key that is no
    UTF-8 where the whole body is decoded, an empty body."""
    cases = [("/v1/chat/completions", b'{"model":"gpt-\xff"}', 400), ("/v1/messages", b"[" * 3000, 400),
             ("/v1/token-count", b'{"model":"m","text":"x","\xfe":1}', 400), ("/v1/embeddings", b"", 400)]
    for path, body, status in cases:
        response = send(gw, "POST", path, [*AUTH, *JSON, (b"content-length", b"%d" % len(body))], [body])
        assert response.status_code == status, (path, response)
        check_answer(response, path)
