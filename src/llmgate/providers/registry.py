"""ProviderConfig → Provider, by `kind`."""

from __future__ import annotations

from llmgate.config import ProviderConfig
from llmgate.providers.anthropic import Anthropic
from llmgate.providers.azure import Azure
from llmgate.providers.base import Provider
from llmgate.providers.bedrock import Bedrock
from llmgate.providers.openai_compatible import OpenAICompatible
from llmgate.providers.presets import PRESETS

PROVIDER_KINDS: dict[str, type[OpenAICompatible | Azure | Anthropic | Bedrock]] = {
    "openai": OpenAICompatible,
    "azure": Azure,
    "anthropic": Anthropic,
    "bedrock": Bedrock,
}


def build_provider(config: ProviderConfig) -> Provider:
    """The Provider for a (resolved) config."""
    preset = PRESETS.get(config.kind)
    if preset is not None:
        return OpenAICompatible(config, preset.capabilities)
    provider: Provider = PROVIDER_KINDS[config.kind](config)
    return provider
