"""ProviderConfig → Provider, by `kind`."""

from __future__ import annotations

from llmgate.config import ProviderConfig
from llmgate.providers.anthropic import Anthropic
from llmgate.providers.azure import Azure
from llmgate.providers.base import Provider
from llmgate.providers.bedrock import Bedrock
from llmgate.providers.gemini import Gemini
from llmgate.providers.openai_compatible import OpenAICompatible
from llmgate.providers.presets import PRESETS
from llmgate.providers.vertex import Vertex

PROVIDER_KINDS: dict[str, type[OpenAICompatible | Azure | Anthropic | Gemini | Vertex | Bedrock]] = {
    "openai": OpenAICompatible,
    "azure": Azure,
    "anthropic": Anthropic,
    "gemini": Gemini,
    "vertex": Vertex,
    "bedrock": Bedrock,
}
GOOGLE_KINDS = frozenset(("gemini", "vertex"))
"""Kinds whose requests are translated to Google's API (pipeline/google.py)."""


def build_provider(config: ProviderConfig) -> Provider:
    """The Provider for a (resolved) config."""
    preset = PRESETS.get(config.kind)
    if preset is not None:
        return OpenAICompatible(config, preset.capabilities)
    provider: Provider = PROVIDER_KINDS[config.kind](config)
    return provider
