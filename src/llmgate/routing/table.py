"""Model name → provider: exact names first, then the first catch-all provider (one that declares no models)."""

from __future__ import annotations

from collections.abc import Sequence

from llmgate.config import ProviderConfig
from llmgate.errors import ModelNotFound


class RoutingTable:
    """Resolves a model name to the provider that serves it."""

    __slots__ = ("_catch_all", "_exact", "providers")

    def __init__(self, providers: Sequence[ProviderConfig]) -> None:
        self.providers = tuple(providers)
        self._exact: dict[str, str] = {}
        for provider in self.providers:
            for model in provider.models:
                self._exact.setdefault(model, provider.name)  # the first provider to declare a model wins
        self._catch_all = next((p.name for p in self.providers if not p.models), None)

    def provider_for(self, model: str) -> str:
        """The name of the provider for `model`; `ModelNotFound` when none serves it."""
        name = self._exact.get(model, self._catch_all)
        if name is None:
            raise ModelNotFound(f"The model `{model}` does not exist or you do not have access to it.",
                                param="model")
        return name

    @property
    def default_provider(self) -> str:
        """The provider for requests that name no model (multipart bodies without a model field, extra routes)."""
        return self._catch_all or self.providers[0].name

    def catch_all_providers(self) -> list[str]:
        """Providers that pass any model through: their model lists come from the upstream."""
        return [p.name for p in self.providers if not p.models]

    def declared_models(self) -> list[tuple[str, str]]:
        """(model, provider) for every model a provider declares, in config order, first declaration only."""
        return list(self._exact.items())
