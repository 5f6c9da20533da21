"""gzip of whole JSON answers (proxy/compress.py) end to end in process: negotiated with `accept-encoding`,
never for a stream, never twice (an upstream's compressed answer passes as it came), off by default."""

from __future__ import annotations

import gzip
import json

import pytest

from llmgate.proxy.compress import accepts_gzip
from tests.inprocess.gateway import AUTH, Gateway
from tests.inprocess.upstream import DOUBLE_URL, Reply, Sent, double

ON = {"OPENAI_BASE_URL": f"{DOUBLE_URL}/v1", "LLMGATE_COMPRESS_MIN_BYTES": "100"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
GZIP = {**AUTH, "accept-encoding": "gzip, deflate"}


def test_a_whole_json_answer_is_gzipped_for_a_client_that_accepts_it() -> None:
    with Gateway(upstream=double(), env=ON) as gw:
        plain = gw.post("/v1/chat/completions", json=CHAT)
        zipped = gw.post("/v1/chat/completions", json=CHAT, headers=GZIP)
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "accept-encoding"
    assert int(zipped.headers["content-length"]) == len(zipped.content) < len(plain.content)
    assert gzip.decompress(zipped.content) == plain.content
    assert zipped.headers["x-llmgate-deployment"] == plain.headers["x-llmgate-deployment"]  # our headers kept


def test_our_own_answers_are_gzipped_too() -> None:
    with Gateway(upstream=double(), env=ON) as gw:
        models = gw.get("/v1/models", headers=GZIP)
    assert models.headers["content-encoding"] == "gzip" and json.loads(gzip.decompress(models.content))["data"]


def test_a_stream_is_never_compressed() -> None:
    with Gateway(upstream=double(), env=ON) as gw:
        stream = gw.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=GZIP)
    assert stream.status_code == 200 and "content-encoding" not in stream.headers
    assert stream.content.endswith(b"data: [DONE]\n\n")


def test_small_answers_and_gateways_without_the_setting_send_as_they_are() -> None:
    with Gateway(upstream=double(), env={**ON, "LLMGATE_COMPRESS_MIN_BYTES": "1000000"}) as gw:
        assert "content-encoding" not in gw.post("/v1/chat/completions", json=CHAT, headers=GZIP).headers
    with Gateway(upstream=double(), env={"OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}) as gw:
        assert "content-encoding" not in gw.post("/v1/chat/completions", json=CHAT, headers=GZIP).headers


def test_an_answer_the_upstream_compressed_passes_through_as_it_came() -> None:
    body = gzip.compress(json.dumps({"id": "z", "choices": [], "pad": "x" * 500}).encode())

    def upstream(_: Sent) -> Reply:
        return Reply(200, body, [("content-type", "application/json"), ("content-encoding", "gzip")])

    with Gateway(upstream=upstream, env=ON) as gw:
        answer = gw.post("/v1/chat/completions", json=CHAT, headers=GZIP)
    assert answer.content == body and answer.headers.get_list("content-encoding") == ["gzip"]


def test_a_cache_hit_is_compressed_and_the_cache_keeps_it_uncompressed() -> None:
    with Gateway(upstream=double(), env={**ON, "LLMGATE_CACHE_TTL_S": "60"}) as gw:
        miss = gw.post("/v1/chat/completions", json=CHAT, headers=GZIP)
        hit = gw.post("/v1/chat/completions", json=CHAT, headers=GZIP)
        plain_hit = gw.post("/v1/chat/completions", json=CHAT)
    assert (miss.headers["x-llmgate-cache"], hit.headers["x-llmgate-cache"]) == ("miss", "hit")
    assert hit.headers["content-encoding"] == "gzip" and gzip.decompress(hit.content) == plain_hit.content
    assert plain_hit.headers["x-llmgate-cache"] == "hit" and "content-encoding" not in plain_hit.headers


@pytest.mark.parametrize(("value", "accepted"), [
    (b"gzip", True), (b"br, gzip;q=0.5", True), (b"*", True), (b"GZIP", True), (b"x-gzip", True),
    (b"gzip;q=0", False), (b"br, deflate", False), (b"identity", False), (b"", False), (b"gzip;q=abc", False),
])
def test_accept_encoding_is_read_with_its_q_values(value: bytes, accepted: bool) -> None:
    assert accepts_gzip(value) is accepted
