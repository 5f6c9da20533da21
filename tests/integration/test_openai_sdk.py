"""The official OpenAI SDK pointed at llmgate, unchanged but for base_url and api_key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.servers import MASTER_KEY, UPSTREAM_KEY, Gateway


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


def seen(upstream: str) -> dict:
    return httpx.get(f"{upstream}/_seen").json()


def test_chat(client: openai.OpenAI, upstream: str) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content.startswith("Hello from the mock upstream.")
    assert completion.usage is not None and completion.usage.total_tokens == 35
    last = seen(upstream)
    assert last["last_path"] == "/v1/chat/completions"
    assert last["last_auth"] == f"Bearer {UPSTREAM_KEY}"  # the caller's key was swapped for the provider's


def test_chat_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                            stream=True, extra_headers={"x-mock-chunks": "5"})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok0 tok1 tok2 tok3 tok4 "
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                            stream=True, stream_options={"include_usage": True},
                                            extra_headers={"x-mock-chunks": "3"})
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_completions(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert completion.choices[0].text


def test_embeddings(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
    assert [d.index for d in result.data] == [0, 1, 2]
    assert result.usage.prompt_tokens > 0


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.code == "model_not_found"


def test_images_and_responses(client: openai.OpenAI) -> None:
    image = client.images.generate(model="gpt-image-1", prompt="a cat")
    assert image.data and image.data[0].b64_json
    response = client.responses.create(model="gpt-4o-mini", input="hi")
    assert response.output_text


def test_audio_speech_bytes_pass_through(client: openai.OpenAI, upstream: str) -> None:
    direct = httpx.post(f"{upstream}/v1/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "alloy"})
    speech = client.audio.speech.create(model="tts-1", input="hi", voice="alloy")
    assert speech.content == direct.content and len(direct.content) > 1000
    assert speech.response.headers["content-type"] == direct.headers["content-type"]


def test_audio_transcription_multipart(client: openai.OpenAI, upstream: str) -> None:
    audio = bytes(range(256)) * 4096  # 1 MiB
    result = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=("a.wav", audio))
    assert result.parse().text
    assert int(result.headers["x-mock-received-bytes"]) > len(audio)  # the whole multipart body arrived
    assert seen(upstream)["last_path"] == "/v1/audio/transcriptions"


def test_rate_limit_reaches_the_sdk_with_its_headers(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=[], extra_headers={"x-mock-status": "429"})
    headers = info.value.response.headers
    assert headers["retry-after"] == "1"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert info.value.body["message"] == "mock error 429"  # the upstream's error body, unchanged


def test_upstream_server_error_passes_through(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=[], extra_headers={"x-mock-status": "503"})
    assert info.value.status_code == 503


def test_wrong_key(gateway: Gateway) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-wrong", max_retries=0) as client, \
            pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="m", messages=[])
    assert info.value.code == "invalid_api_key"


def test_missing_key(gateway: Gateway) -> None:
    # The SDK refuses to send without a key, so this one goes through httpx.
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "m", "messages": []})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert "didn't provide an API key" in response.json()["error"]["message"]


def test_x_api_key_header_is_accepted(gateway: Gateway) -> None:
    response = httpx.post(f"{gateway.url}/v1/chat/completions", headers={"x-api-key": MASTER_KEY},
                          json={"model": "m", "messages": []})
    assert response.status_code == 200


def test_bad_requests_are_400_with_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=None, messages=[])  # type: ignore[arg-type]
    assert info.value.param == "model"
    with pytest.raises(openai.BadRequestError, match="could not parse the JSON body"):
        client.post("/chat/completions", cast_to=object, content=b'{"model": "m",')


def test_unknown_path_and_wrong_method(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.post("/fine_tuning/jobs", body={}, cast_to=object)
    assert info.value.code == "unknown_url"
    with pytest.raises(openai.APIStatusError) as info405:
        client.get("/chat/completions", cast_to=object)
    assert info405.value.status_code == 405
    assert info405.value.response.headers["allow"] == "POST"


def test_request_ids(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="m", messages=[])
    ours, theirs = raw.headers["x-request-id"], raw.headers["x-upstream-request-id"]
    assert len(ours) == 24 and theirs.startswith("up-")
    raw = client.chat.completions.with_raw_response.create(model="m", messages=[],
                                                           extra_headers={"x-request-id": "mine-42"})
    assert raw.headers["x-request-id"] == "mine-42"
