"""URL and auth shapes per provider kind."""

from llmgate.config import ProviderConfig
from llmgate.providers.registry import build_provider


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
