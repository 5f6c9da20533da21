"""ProviderConfig → Provider, by `kind`."""

from __future__ import annotations

from llmgate.config import ProviderConfig
from llmgate.providers.anthropic import Anthropic
from llmgate.providers.azure import Azure
from llmgate.providers.base import Provider
from llmgate.providers.gemini import Gemini
from llmgate.providers.openai_compatible import OpenAICompatible
from llmgate.providers.vertex import Vertex

PROVIDER_KINDS: dict[str, type[OpenAICompatible | Azure | Anthropic | Gemini | Vertex]] = {
    "openai": OpenAICompatible,
    "azure": Azure,
    "anthropic": Anthropic,
    "gemini": Gemini,
    "vertex": Vertex,
}
GOOGLE_KINDS = frozenset(("gemini", "vertex"))
"""Kinds whose requests are translated to Google's API (pipeline/google.py)."""


def build_provider(config: ProviderConfig) -> Provider:
    """The Provider for a (resolved) config."""
    provider: Provider = PROVIDER_KINDS[config.kind](config)
    return provider
