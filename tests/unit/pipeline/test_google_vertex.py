"""Providers of kind `vertex` through the app in process, with the OpenAI and Anthropic SDKs, against the Google
double: its Vertex paths accept only bearer tokens that a local OAuth token endpoint issued, for a JWT assertion
signed by the service account key the test made (its `token_uri` is that endpoint)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.google_double import TEXT, GoogleDouble, embedding
from tests.google_token_endpoint import EMAIL, TokenEndpoint, service_account
from tests.inprocess.gateway import Gateway
from tests.servers import MASTER_KEY

PREFIX = "/v1/projects/my-project/locations/us-central1/publishers"
HI = [{"role": "user", "content": "hi there"}]
CONFIG = """
[[providers]]
name = "vertex"
kind = "vertex"
project = "my-project"
location = "us-central1"
credentials_file = "env:GOOGLE_APPLICATION_CREDENTIALS"
base_url = "http://vertex.test"
models = ["gemini-*", "claude-*", "text-embedding-*"]
"""


@pytest.fixture(scope="module")
def key_pair() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def token_endpoint(key_pair: rsa.RSAPrivateKey) -> Iterator[TokenEndpoint]:
    endpoint = TokenEndpoint(key_pair.public_key())
    yield endpoint
    endpoint.close()


@pytest.fixture
def double(token_endpoint: TokenEndpoint) -> GoogleDouble:
    return GoogleDouble(tokens=token_endpoint.issued)


@pytest.fixture
def gw(tmp_path: Path, key_pair: rsa.RSAPrivateKey, token_endpoint: TokenEndpoint,
       double: GoogleDouble) -> Iterator[Gateway]:
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(service_account(tmp_path, key_pair, token_endpoint.url))}
    with Gateway(CONFIG, double, env=env) as gateway:
        yield gateway


@pytest.fixture
def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0, http_client=gw.http)


def test_gemini_chat_and_stream_with_an_issued_token(client: openai.OpenAI, double: GoogleDouble,
                                                    token_endpoint: TokenEndpoint) -> None:
    completion = client.chat.completions.create(model="gemini-2.5-pro", messages=HI)
    assert completion.choices[0].message.content == TEXT and completion.usage is not None
    path, headers, _ = double.seen[-1]
    assert path == f"{PREFIX}/google/models/gemini-2.5-pro:generateContent"
    assert headers["authorization"].removeprefix("Bearer ") in token_endpoint.issued
    chunks = list(client.chat.completions.create(model="gemini-2.5-pro", messages=HI, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 7
    assert double.seen[-1][0] == f"{PREFIX}/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert len(token_endpoint.issued) == 1  # cached: one exchange for every request
    assert token_endpoint.assertions[0]["iss"] == EMAIL


def test_claude_through_raw_predict(client: openai.OpenAI, double: GoogleDouble) -> None:
    completion = client.chat.completions.create(model="claude-opus-4-7", messages=HI, max_tokens=64)
    assert completion.choices[0].message.content == "Hello from Claude on the Vertex double."
    assert completion.usage is not None and completion.usage.prompt_tokens == 9
    path, _, body = double.seen[-1]
    assert path == f"{PREFIX}/anthropic/models/claude-opus-4-7:rawPredict"
    assert body == {"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 64,
                    "anthropic_version": "vertex-2023-10-16"}
    chunks = list(client.chat.completions.create(model="claude-opus-4-7", messages=HI, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "Hello from Claude on the Vertex double."
    assert double.seen[-1][0] == f"{PREFIX}/anthropic/models/claude-opus-4-7:streamRawPredict"


def test_anthropic_sdk_reaches_claude_as_it_is(gw: Gateway, double: GoogleDouble) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0, http_client=gw.http2)
    message = client.messages.create(model="claude-opus-4-7", max_tokens=32, messages=HI)
    assert message.content[0].type == "text" and message.content[0].text == "Hello from Claude on the Vertex double."
    assert double.seen[-1][2] == {"max_tokens": 32, "messages": HI, "anthropic_version": "vertex-2023-10-16"}
    with client.messages.stream(model="claude-opus-4-7", max_tokens=32, messages=HI) as stream:
        assert "".join(stream.text_stream) == "Hello from Claude on the Vertex double."
    gemini = client.messages.create(model="gemini-2.5-pro", max_tokens=32, messages=HI)
    assert gemini.content[0].type == "text" and gemini.content[0].text == TEXT


def test_embeddings_through_predict(client: openai.OpenAI, double: GoogleDouble) -> None:
    result = client.embeddings.create(model="text-embedding-005", input=["a b", "c"], encoding_format="float")
    assert [d.embedding for d in result.data] == [embedding("a b", 8), embedding("c", 8)]
    assert result.usage.prompt_tokens == 3
    assert double.seen[-1][0] == f"{PREFIX}/google/models/text-embedding-005:predict"


def test_errors_and_a_token_that_cannot_be_had(client: openai.OpenAI, tmp_path: Path, key_pair: rsa.RSAPrivateKey,
                                               double: GoogleDouble) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gemini-2.5-pro", messages=HI, extra_headers={"x-mock-status": "429"})
    assert limited.value.code == "RESOURCE_EXHAUSTED"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # the endpoint does not know it
    config = f"""
[[providers]]
name = "vertex"
kind = "vertex"
project = "my-project"
location = "us-central1"
credentials_file = "{service_account(tmp_path, other, "http://127.0.0.1:1/token")}"
base_url = "http://vertex.test"
models = ["gemini-*"]
[routing]
max_attempts = 1
"""
    with Gateway(config, double) as gw:
        answer = gw.post("/v1/chat/completions", json={"model": "gemini-2.5-pro", "messages": HI})
        assert answer.status_code == 502 and "vertex" in answer.json()["error"]["message"]
        assert "could not obtain an access token" in gw.logs()


def test_a_reload_keeps_the_token(gw: Gateway, client: openai.OpenAI, token_endpoint: TokenEndpoint,
                                  tmp_path: Path) -> None:
    client.chat.completions.create(model="gemini-2.5-pro", messages=HI)
    # the same key file, named as it is (a reload reads the process's environment)
    gw.write_config(CONFIG.replace("env:GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "sa.json")))
    assert gw.reload()
    client.chat.completions.create(model="gemini-2.5-pro", messages=HI)
    assert len(token_endpoint.issued) == 1


def test_count_tokens_gemini_upstream_claude_here(gw: Gateway, double: GoogleDouble) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0, http_client=gw.http2)
    assert client.messages.count_tokens(model="gemini-2.5-pro", messages=HI).input_tokens == 2 + 3
    assert double.seen[-1][0] == f"{PREFIX}/google/models/gemini-2.5-pro:countTokens"
    assert double.seen[-1][2] == {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]}
    seen = len(double.seen)
    assert client.messages.count_tokens(model="claude-opus-4-7", messages=HI).input_tokens > 0  # tiktoken, here
    assert len(double.seen) == seen
