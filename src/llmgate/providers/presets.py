"""Named OpenAI-compatible providers: `kind = "groq"` fills in the base URL, the capabilities and the parameters
the provider rejects. Data, not code: one table, read by config.py (the default base URL), the registry (an
OpenAICompatible with the preset's capabilities) and the attempt loop (parameters dropped before sending).

Every preset authenticates with `Authorization: Bearer` (the local servers, Ollama, vLLM and LM Studio, need no
key and get no header when none is configured).
"""

from __future__ import annotations

import msgspec
from loguru import logger

from llmgate.config_types import Capability


class Preset(msgspec.Struct, kw_only=True, frozen=True):
    """What a named OpenAI-compatible provider differs in."""

    base_url: str
    """The default base URL, with its version prefix (requests go to `{base_url}/chat/completions`)."""
    capabilities: frozenset[Capability]
    """The endpoints it serves (a config's `capabilities` overrides them)."""
    rejects: tuple[tuple[str, frozenset[str]], ...] = ()
    """(model name prefix, top-level parameters): the provider answers 400 when a request for a model with that
    prefix carries one of them ("" for every model); llmgate drops them before sending, with a debug log."""


_CHAT = frozenset[Capability](("chat",))
_TEXT = frozenset[Capability](("chat", "completions", "embeddings"))
_LOCAL = frozenset[Capability](("chat", "completions", "embeddings", "responses"))

PRESETS: dict[str, Preset] = {
    "openrouter": Preset(base_url="https://openrouter.ai/api/v1", capabilities=frozenset(("chat", "completions"))),
    # https://console.groq.com/docs/openai: "The following fields are currently not supported and will result
    # in a 400 error if they are supplied: logprobs, logit_bias, top_logprobs".
    "groq": Preset(base_url="https://api.groq.com/openai/v1", capabilities=frozenset(("chat", "audio", "responses")),
                   rejects=(("", frozenset(("logprobs", "logit_bias", "top_logprobs"))),)),
    "together": Preset(base_url="https://api.together.xyz/v1", capabilities=frozenset(("chat", "completions",
                                                                                         "embeddings", "images"))),
    "mistral": Preset(base_url="https://api.mistral.ai/v1", capabilities=frozenset(("chat", "embeddings"))),
    # https://api-docs.deepseek.com/guides/reasoning_model: for deepseek-reasoner "setting logprobs,
    # top_logprobs will trigger an error" (temperature, top_p and the penalties are accepted and ignored).
    "deepseek": Preset(base_url="https://api.deepseek.com/v1", capabilities=frozenset(("chat", "completions")),
                       rejects=(("deepseek-reasoner", frozenset(("logprobs", "top_logprobs"))),)),
    "xai": Preset(base_url="https://api.x.ai/v1", capabilities=frozenset(("chat", "images", "responses"))),
    "fireworks": Preset(base_url="https://api.fireworks.ai/inference/v1", capabilities=_TEXT | {"images"}),
    "perplexity": Preset(base_url="https://api.perplexity.ai", capabilities=_CHAT),
    "ollama": Preset(base_url="http://localhost:11434/v1", capabilities=_LOCAL),
    "vllm": Preset(base_url="http://localhost:8000/v1", capabilities=_LOCAL),
    "lmstudio": Preset(base_url="http://localhost:1234/v1", capabilities=_LOCAL),
}

QUIRKY_KINDS = frozenset(kind for kind, preset in PRESETS.items() if preset.rejects)
"""The kinds whose requests are checked for rejected parameters (the others are sent as they are)."""
_decode_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode


def rejected_params(kind: str, model: str) -> frozenset[str]:
    """The top-level parameters a provider of `kind` rejects for `model` (empty for most)."""
    preset = PRESETS.get(kind)
    if preset is None or not preset.rejects:
        return frozenset()
    found: frozenset[str] = frozenset()
    for prefix, params in preset.rejects:
        if model.startswith(prefix):
            found |= params
    return found


def drop_params(body: bytes, params: frozenset[str], provider: str) -> bytes:
    """`body` without the top-level `params` (the rest kept as raw JSON, in order); the same bytes when it has
    none of them or is not a JSON object."""
    if not any(f'"{param}"'.encode() in body for param in params):  # the common case: nothing to decode
        return body
    try:
        fields = _decode_top_level(body)
    except msgspec.DecodeError:
        return body
    dropped = sorted(param for param in params if fields.pop(param, None) is not None)
    if not dropped:
        return body
    logger.debug("dropped {} from the request to {}: the provider rejects them", ", ".join(dropped), provider)
    return _encode(fields)
