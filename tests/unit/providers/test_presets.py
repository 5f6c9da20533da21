"""The named OpenAI-compatible presets: each one's URL, auth and capabilities from two lines of config; the
parameters a provider rejects dropped before sending; and a preset end to end against the OpenAI double."""

import json
from pathlib import Path

import openai
import pytest

from llmgate.config import ConfigError, load_settings
from llmgate.providers.presets import PRESETS, drop_params, rejected_params
from llmgate.providers.registry import build_provider
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import DOUBLE_URL, double, replies, reply_json, seen
from tests.servers import MASTER_KEY

EXPECTED_URLS = {
    "openrouter": "https://openrouter.ai/api/v1", "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1", "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1", "xai": "https://api.x.ai/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1", "perplexity": "https://api.perplexity.ai",
    "ollama": "http://localhost:11434/v1", "vllm": "http://localhost:8000/v1", "lmstudio": "http://localhost:1234/v1",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_URLS))
def test_preset_fills_in_url_auth_and_capabilities(kind: str, tmp_path: Path) -> None:
    config = tmp_path / "llmgate.toml"
    config.write_text(f'[[providers]]\nname = "p"\nkind = "{kind}"\napi_key = "sk-{kind}-1"\n')
    provider_config = load_settings({"LLMGATE_CONFIG": str(config)}).providers[0]
    assert provider_config.base_url == EXPECTED_URLS[kind]
    provider = build_provider(provider_config)
    assert provider.upstream_path("/chat/completions", "", "m") == "/chat/completions"
    assert provider.auth_headers(f"sk-{kind}-1") == (("authorization", f"Bearer sk-{kind}-1"),)
    assert provider.auth_headers("") == ()  # a local server without a key gets no header
    assert provider.capabilities == PRESETS[kind].capabilities and "chat" in provider.capabilities
    assert "messages" not in provider.capabilities  # Anthropic clients reach presets through translation


def test_base_url_and_capabilities_override_the_preset(tmp_path: Path) -> None:
    config = tmp_path / "llmgate.toml"
    config.write_text('[[providers]]\nname = "p"\nkind = "ollama"\nbase_url = "http://gpu-box:11434/v1/"\n'
                      'capabilities = ["chat"]\n')
    provider_config = load_settings({"LLMGATE_CONFIG": str(config)}).providers[0]
    assert provider_config.base_url == "http://gpu-box:11434/v1"
    assert build_provider(provider_config).capabilities == {"chat"}


def test_base_url_stays_required_for_kinds_without_a_default(tmp_path: Path) -> None:
    config = tmp_path / "llmgate.toml"
    config.write_text('[[providers]]\nname = "a"\nkind = "azure"\n')
    with pytest.raises(ConfigError, match=r"llmgate.toml:1: providers\[0\]\.base_url: is required for kind 'azure'"):
        load_settings({"LLMGATE_CONFIG": str(config)})


def test_rejected_params_by_kind_and_model() -> None:
    assert rejected_params("groq", "llama-3.3-70b") == {"logprobs", "logit_bias", "top_logprobs"}
    assert rejected_params("deepseek", "deepseek-reasoner") == {"logprobs", "top_logprobs"}
    assert rejected_params("deepseek", "deepseek-chat") == frozenset()  # only the reasoner rejects them
    assert rejected_params("openai", "gpt-4o") == rejected_params("mistral", "x") == frozenset()


def test_drop_params_keeps_everything_else_as_it_was() -> None:
    body = b'{"model":"m","logprobs":true,"messages":[{"role":"user","content":"logprobs"}],"top_logprobs":2}'
    out = drop_params(body, frozenset(("logprobs", "top_logprobs", "logit_bias")), "groq")
    assert json.loads(out) == {"model": "m", "messages": [{"role": "user", "content": "logprobs"}]}
    untouched = b'{"model":"m","messages":[]}'
    assert drop_params(untouched, frozenset(("logprobs",)), "groq") is untouched
    assert drop_params(b"not json logprobs", frozenset(("logprobs",)), "groq") == b"not json logprobs"


def test_a_rejected_parameter_is_dropped_on_the_way_up_with_a_debug_log() -> None:
    config = f'[server]\nlog_level = "DEBUG"\n[[providers]]\nname = "groq"\nkind = "groq"\n' \
             f'base_url = "{DOUBLE_URL}/groq/v1"\napi_key = "gsk-test"\n'
    answer = reply_json({"id": "c", "object": "chat.completion", "choices": []})
    with Gateway(config, replies(answer, answer)) as gw:
        body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "hi"}], "logprobs": True,
                "top_logprobs": 3, "temperature": 0.5}
        assert gw.post("/v1/chat/completions", json=body).status_code == 200
        sent = json.loads(gw.sent[-1].body)
        assert "logprobs" not in sent and "top_logprobs" not in sent and sent["temperature"] == 0.5
        assert gw.sent[-1].headers["authorization"] == "Bearer gsk-test"
        assert "dropped logprobs, top_logprobs from the request to groq" in gw.logs()
        # a request without them goes up byte for byte
        plain = json.dumps({"model": "llama-3.3-70b", "messages": []}).encode()
        gw.post("/v1/chat/completions", content=plain, headers={"content-type": "application/json"})
        assert gw.sent[-1].body == plain


def test_a_preset_end_to_end_with_the_openai_sdk_against_the_double() -> None:
    config = f'[[providers]]\nname = "together"\nkind = "together"\nbase_url = "{DOUBLE_URL}/together/v1"\n' \
             'api_key = "tg-key-0001"\n'
    with Gateway(config, double()) as gw:
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0, http_client=gw.http)
        completion = client.chat.completions.create(model="meta-llama/Llama-3-8b",
                                                    messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content
        up = seen()
        assert up["last_path"] == "/together/v1/chat/completions"
        assert up["last_headers"]["authorization"] == "Bearer tg-key-0001"
        streamed = client.chat.completions.create(model="meta-llama/Llama-3-8b", stream=True,
                                                  messages=[{"role": "user", "content": "hi"}])
        assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
        embedding = client.embeddings.create(model="m2-bert", input=["a", "b"])
        assert len(embedding.data) == 2
