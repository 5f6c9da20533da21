"""URL and auth shapes per provider kind, as build_provider (providers/registry.py) makes them; and through the
app, against the double run in process."""

from collections.abc import Iterator

import openai
import pytest

from llmgate.config import ProviderConfig
from llmgate.providers.registry import build_provider
from tests.inprocess.gateway import Gateway, Response
from tests.inprocess.routed import AZURE_KEY, ROUTED
from tests.inprocess.upstream import DOUBLE_URL, double, seen
from tests.servers import MASTER_KEY


def test_openai_compatible() -> None:
    p = build_provider(ProviderConfig(name="o", base_url="https://api.openai.com/v1"))
    assert p.upstream_path("/chat/completions", "", "gpt-4o") == "/chat/completions"
    assert p.upstream_path("/chat/completions", "a=1", "gpt-4o") == "/chat/completions?a=1"
    assert p.auth_headers("sk-1") == (("authorization", "Bearer sk-1"),) and p.auth_headers("") == ()
    assert "messages" not in p.capabilities and "embeddings" in p.capabilities


def test_azure() -> None:
    p = build_provider(ProviderConfig(name="az", kind="azure", base_url="https://r.openai.azure.com"))
    assert p.upstream_path("/chat/completions", "", "dep") == \
        "/openai/deployments/dep/chat/completions?api-version=2024-10-21"
    assert p.upstream_path("/embeddings", "x=1", "emb") == \
        "/openai/deployments/emb/embeddings?api-version=2024-10-21&x=1"
    assert p.upstream_path("/chat/completions", "api-version=2025-01-01", "dep") == \
        "/openai/deployments/dep/chat/completions?api-version=2025-01-01"  # the caller's own version wins
    assert p.upstream_path("/models", "", "") == "/openai/models?api-version=2024-10-21"
    assert p.auth_headers("k") == (("api-key", "k"),)
    custom = build_provider(ProviderConfig(name="az", kind="azure", base_url="https://r", api_version="2024-06-01"))
    assert custom.upstream_path("/chat/completions", "", "d").endswith("?api-version=2024-06-01")


def test_anthropic() -> None:
    p = build_provider(ProviderConfig(name="a", kind="anthropic", base_url="https://api.anthropic.com"))
    assert p.upstream_path("/messages", "", "claude") == "/v1/messages"
    assert p.upstream_path("/chat/completions", "", "claude") == "/v1/chat/completions"
    assert p.auth_headers("sk-ant") == (("x-api-key", "sk-ant"),)
    assert p.default_headers == (("anthropic-version", "2023-06-01"),)
    assert p.capabilities == {"messages", "chat"}
    v1 = build_provider(ProviderConfig(name="a", kind="anthropic", base_url="https://proxy/v1"))
    assert v1.upstream_path("/messages", "", "c") == "/messages"


def test_gemini() -> None:
    p = build_provider(ProviderConfig(name="g", kind="gemini", base_url="https://generativelanguage.googleapis.com"))
    assert p.upstream_path(":generateContent", "", "gemini-2.5-flash") == \
        "/v1beta/models/gemini-2.5-flash:generateContent"
    assert p.upstream_path(":streamGenerateContent", "alt=sse", "g") == "/v1beta/models/g:streamGenerateContent?alt=sse"
    assert p.upstream_path("/models", "pageSize=1000", "") == "/v1beta/models?pageSize=1000"
    assert p.auth_headers("AIza") == (("x-goog-api-key", "AIza"),) and p.auth_headers("") == ()
    assert p.capabilities == {"chat", "embeddings"}
    versioned = build_provider(ProviderConfig(name="g", kind="gemini", base_url="https://proxy/v1"))
    assert versioned.upstream_path(":generateContent", "", "m") == "/models/m:generateContent"


def test_vertex() -> None:
    p = build_provider(ProviderConfig(name="v", kind="vertex", base_url="https://us-central1-aiplatform.googleapis.com",
                                      project="proj", location="us-central1"))
    prefix = "/v1/projects/proj/locations/us-central1/publishers"
    assert p.upstream_path(":generateContent", "", "gemini-2.5-pro") == \
        f"{prefix}/google/models/gemini-2.5-pro:generateContent"
    assert p.upstream_path(":streamRawPredict", "", "claude-opus-4-7") == \
        f"{prefix}/anthropic/models/claude-opus-4-7:streamRawPredict"
    assert p.upstream_path(":predict", "", "text-embedding-005") == f"{prefix}/google/models/text-embedding-005:predict"
    assert p.auth_headers("anything") == ()  # the access token is added per request


# Through the app, against the upstream double run in process.


@pytest.fixture(scope="module")
def shapes() -> Iterator[Gateway]:
    with Gateway(ROUTED, double()) as gw:
        yield gw


def chat(gw: Gateway, model: str) -> Response:
    return gw.post("/v1/chat/completions", json={"model": model, "messages": []})


def say_hi(gw: Gateway, model: str) -> Response:
    return gw.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_azure_url_and_header_shape(shapes: Gateway) -> None:
    assert chat(shapes, "gpt-4o").status_code == 200
    up = seen()
    assert up["last_path"] == "/az/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-06-01"
    assert up["last_headers"]["api-key"] == AZURE_KEY
    assert "authorization" not in up["last_headers"]
    client = openai.OpenAI(base_url=f"{shapes.url}/v1", api_key=MASTER_KEY, max_retries=0, http_client=shapes.http)
    embedding = client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
    assert len(embedding.data) == 3 and embedding.usage.prompt_tokens > 0  # one batch, one usage


def test_anthropic_auth_headers(shapes: Gateway) -> None:
    """A chat request for a model on an Anthropic provider is translated to Messages (translate/)."""
    assert say_hi(shapes, "claude-3-5-haiku-latest").status_code == 200
    up = seen()
    assert up["last_path"] == "/anth/v1/messages"
    assert up["last_headers"]["x-api-key"] == "sk-ant-test-00000000000000"
    assert up["last_headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in up["last_headers"]


def test_no_config_anthropic_provider_serves_claude() -> None:
    env = {"ANTHROPIC_API_KEY": "sk-ant-env-0000000000001", "ANTHROPIC_BASE_URL": f"{DOUBLE_URL}/a",
           "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}
    with Gateway(upstream=double(), env=env) as gw:
        assert say_hi(gw, "claude-sonnet-4-5").status_code == 200
        up = seen()
        assert up["last_path"] == "/a/v1/messages"
        assert up["last_headers"]["x-api-key"] == "sk-ant-env-0000000000001"
        assert chat(gw, "gpt-4o-mini").status_code == 200
        assert seen()["last_path"] == "/v1/chat/completions"
        # /v1/models: the OpenAI upstream's list, then the claude-* models from Anthropic's, in OpenAI's shape
        listed = gw.get("/v1/models").json()["data"]
        claude = gw.get("/v1/models/claude-3-5-haiku-20241022").json()
    assert [m["id"] for m in listed] == ["gpt-4o-mini", "text-embedding-3-small", "claude-sonnet-4-5-20250929",
                                         "claude-3-5-haiku-20241022"]
    assert claude == {"id": "claude-3-5-haiku-20241022", "object": "model", "created": 1759104000,
                      "owned_by": "anthropic"}
