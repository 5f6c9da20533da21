"""The read step's pure parts: routing-field decoding, multipart sniffing."""

import asyncio
from typing import Any

import httpx
import pytest

from llmgate.errors import InvalidRequest
from llmgate.pipeline.read import FirstChunk, decode_view, sniff_multipart_fields
from tests.inprocess.gateway import AUTH, Gateway, Response, http_scope
from tests.inprocess.upstream import double


def test_decode_view_reads_only_model_and_stream() -> None:
    view = decode_view(b'{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o","stream":true,"n":2}')
    assert (view.model, view.stream) == ("gpt-4o", True)
    assert decode_view(b'{"model":"m","stream":null}').stream is None


@pytest.mark.parametrize(("body", "message", "param"), [
    (b'{"messages":[]}', "You must provide a model parameter.", "model"),
    (b'{"model":3}', "Invalid value for 'model': Expected `str`, got `int`.", "model"),
    (b'{"model":"m","stream":"yes"}', "Invalid value for 'stream': Expected `bool | null`, got `str`.", "stream"),
    (b'[1,2]', "The request body must be a JSON object.", None),
    (b'{"model":', "We could not parse the JSON body of your request: Input data was truncated.", None),
    (b'', "The request body is empty; expected a JSON object.", None),
    (b'  \n', "The request body is empty; expected a JSON object.", None),
    (b'{"model":"m"} trailing', "We could not parse the JSON body of your request: JSON is malformed: "
                                "trailing characters (byte 15).", None),
])
def test_decode_view_errors_name_the_problem(body: bytes, message: str, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_view(body)
    assert (info.value.message, info.value.param, info.value.status) == (message, param, 400)


MULTIPART = (
    b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
    b'--b\r\nContent-Disposition: form-data; name="stream"\r\n\r\ntrue\r\n'
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    b'RIFF....\r\n--b--\r\n'
)


def test_sniff_multipart_fields() -> None:
    assert sniff_multipart_fields(FirstChunk(MULTIPART, False)) == ("whisper-1", True)
    assert sniff_multipart_fields(FirstChunk(b"--b\r\n", True)) == (None, False)


def test_body_over_the_limit_is_413(small_gateway: Gateway) -> None:
    """Through the app, in process."""
    big = b'{"model":"m","input":"' + b"x" * 5000 + b'"}'
    response = small_gateway.post("/v1/embeddings", content=big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    chunks = [b"x" * 1000] * 10  # no content-length: the limit holds while reading
    response = small_gateway.post("/v1/embeddings", content=chunks)
    assert response.status_code == 413


DEEP = b'{"model":"m","messages":' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.mark.parametrize(("body", "message"), [
    (DEEP, "The JSON body of your request is nested too deeply."),
    (b'{"model":"gpt-\xff\xfe"}', "The JSON body of your request is not valid UTF-8."),
])
def test_decode_view_refuses_what_msgspec_cannot_decode(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_view(body)
    assert (info.value.message, info.value.status) == (message, 400)


@pytest.mark.parametrize("body", [DEEP, b'{"model":"gpt-\xff"}'])
@pytest.mark.parametrize(("path", "anthropic"), [
    ("/v1/chat/completions", False), ("/v1/messages", True), ("/v1/token-count", False),
    ("/v1/messages/count_tokens", True)])
def test_undecodable_bodies_are_400_in_the_callers_shape(double_gateway: Gateway, body: bytes, path: str,
                                                         anthropic: bool) -> None:
    """Nesting past msgspec's limit and bytes that are no UTF-8 were a 500 (RecursionError, UnicodeDecodeError)."""
    response = double_gateway.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and ("JSON body" in error["message"])
    assert ("param" in error) is not anthropic and (response.json().get("type") == "error") is anthropic


def test_translated_and_counted_bodies_with_bad_keys_are_400(double_gateway: Gateway) -> None:
    """A key the view skips is decoded where the whole body is (translation, counting): 400 there too."""
    body = b'{"model":"m","text":"x","\xff":1}'
    response = double_gateway.post("/v1/token-count", content=body)
    assert response.status_code == 400 and "UTF-8" in response.json()["error"]["message"]


def stalled_body(gateway: Gateway, path: str, first: bytes | None) -> Response:
    """A client that sends its headers and `first` of a 1000-byte body (None: not even a first message), then
    nothing."""

    async def stall() -> Response:
        response = Response()
        sent = False

        async def receive() -> dict[str, object]:
            nonlocal sent
            if not sent and first is not None:
                sent = True
                return {"type": "http.request", "body": first, "more_body": True}
            await asyncio.Event().wait()  # the rest never comes
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response.status_code = message["status"]
                response.headers = httpx.Headers(message["headers"])
            else:
                response.chunks.append(message.get("body", b""))

        scope = http_scope("POST", path, {**AUTH, "content-type": "application/json"}, 1000)
        await gateway.app(scope, receive, send)
        return response

    return gateway.run(stall())


@pytest.mark.parametrize(("path", "first", "anthropic"), [
    ("/v1/chat/completions", b'{"model":"m"', False), ("/v1/chat/completions", None, False),
    ("/v1/messages", b'{"model":"claude-x"', True), ("/v1/audio/transcriptions", None, False)])
def test_a_body_that_stops_coming_is_408_and_closes_the_connection(path: str, first: bytes | None,
                                                                  anthropic: bool) -> None:
    """Headers then a stalled body (or none) held the request, and its connection, for ever."""
    with Gateway(env={"LLMGATE_BODY_TIMEOUT_S": "0.05"}, upstream=double()) as gw:
        response = stalled_body(gw, path, first)
        assert response.status_code == 408 and response.headers["connection"] == "close"
        body = response.json()
        message = "The request body did not arrive within 0.05 seconds."
        if anthropic:
            assert body == {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        else:
            assert body["error"] == {"message": message, "type": "invalid_request_error", "param": None,
                                     "code": "request_timeout"}
        assert gw.sent == []
        next_one = gw.post("/v1/chat/completions", json={"model": "m", "messages": []})
        assert next_one.status_code == 200
