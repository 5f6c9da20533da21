"""Model name → Route (an alias and its deployments), built from the config. Pure: no I/O.

Lookup order: `[[models]]` aliases and the names providers declare (exact), then declared prefixes
(`claude-*`), then the catch-all provider: the first that declares no models and no alias uses.
Key and breaker state carry over from the previous table on reload, matched by provider and key / by deployment
name (a pass-through deployment's breakers per model too).
"""

from __future__ import annotations

from collections.abc import Sequence

from llmgate.config import ModelConfig, ProviderConfig, RoutingConfig
from llmgate.errors import ModelNotFound
from llmgate.providers.base import ENDPOINT_CAPABILITIES, Provider
from llmgate.providers.registry import build_provider
from llmgate.routing.breaker import Breaker, ModelBreakers
from llmgate.routing.keys import KeyRing, KeyState
from llmgate.routing.select import Deployment, Route


def catch_all_provider(providers: Sequence[ProviderConfig], models: Sequence[ModelConfig]) -> str | None:
    """The provider that serves every model nothing else claims: the first that declares no models and that no
    alias uses (a provider an alias uses serves that alias's upstream models, not every name a client sends)."""
    used = {d.provider for m in models for d in m.deployments}
    return next((p.name for p in providers if not p.models and p.name not in used), None)


class RoutingTable:
    """Resolves a model name (and the capability the endpoint needs) to the Route that serves it."""

    __slots__ = ("_catch_all", "_deployments", "_exact", "_prefixes", "keyrings", "providers", "routing")

    def __init__(self, providers: Sequence[ProviderConfig], models: Sequence[ModelConfig] = (),
                 routing: RoutingConfig | None = None, previous: RoutingTable | None = None) -> None:
        self.routing = routing or RoutingConfig()
        self.providers: dict[str, Provider] = {p.name: build_provider(p) for p in providers}
        if previous is not None:
            _keep_access_tokens(self.providers, previous.providers)
        self.keyrings = {name: _keyring(p, previous) for name, p in self.providers.items()}
        self._deployments: dict[str, Deployment] = {}
        self._exact: dict[str, Route] = {}
        self._prefixes: list[tuple[str, Route]] = []
        for model in models:
            self._exact[model.name] = self._alias(model, previous)
        for config in providers:
            for name in config.models:
                route = Route(name, [(self._passthrough(config.name, previous), 1.0)])
                if name.endswith("*"):
                    self._prefixes.append((name[:-1], route))
                else:
                    self._exact.setdefault(name, route)  # the first declaration wins
        for model in models:  # validated by config: every fallback is an alias or a declared model
            route = self._exact[model.name]
            route.fallbacks = tuple(self._exact[f] for f in model.fallbacks if f in self._exact)
            route.counts_tokens = route.counts_tokens or any(f.counts_tokens for f in route.fallbacks)
        catch_all = catch_all_provider(providers, models)
        self._catch_all = Route("*", [(self._passthrough(catch_all, previous), 1.0)]) if catch_all else None

    def resolve(self, model: str, path: str) -> Route:
        """The Route for `model` on /v1`path`; `ModelNotFound` when nothing serves it (or not that endpoint)."""
        route = self._exact.get(model)
        if route is None:
            route = self._match_prefix(model)
        if route.by_capability.get(ENDPOINT_CAPABILITIES.get(path)) is None:
            raise ModelNotFound(f"The model `{model}` does not support /v1{path}.", param="model")
        return route

    def _match_prefix(self, model: str) -> Route:
        for prefix, route in self._prefixes:
            if model.startswith(prefix):
                return route
        if self._catch_all is None:
            raise ModelNotFound(f"The model `{model}` does not exist or you do not have access to it.",
                                param="model")
        return self._catch_all

    @property
    def default_route(self) -> Route:
        """For requests that name no model (multipart bodies without a model field, extra routes)."""
        if self._catch_all is not None:
            return self._catch_all
        name = next(iter(self.providers))
        return Route(name, [(self._deployments[name], 1.0)]) if name in self._deployments else \
            Route(name, [(self._passthrough(name, None), 1.0)])

    def catch_all_providers(self) -> list[str]:
        """Providers that pass any model through: their model lists come from the upstream."""
        return [self._catch_all.entries[0][0].provider.name] if self._catch_all else []

    def prefix_providers(self) -> list[tuple[str, str]]:
        """(prefix, provider) for models declared by a pattern (`claude-*`): listed from the upstream's list."""
        return [(prefix, route.entries[0][0].provider.name) for prefix, route in self._prefixes]

    def declared_models(self) -> list[tuple[str, str]]:
        """(model, owner) for every alias and declared model, in config order: the owner is its first provider."""
        return [(name, route.entries[0][0].provider.name) for name, route in self._exact.items()]

    def deployments(self) -> list[Deployment]:
        """Every deployment, each once, in config order."""
        return list(self._deployments.values())

    def _alias(self, model: ModelConfig, previous: RoutingTable | None) -> Route:
        entries = []
        queue_ms = 0.0
        for d in model.deployments:
            upstream = d.model or model.name
            name = f"{d.provider}/{upstream}"
            deployment = self._deployments.get(name)
            if deployment is None:
                deployment = Deployment(name, self.providers[d.provider], upstream, self.keyrings[d.provider],
                                        self._breaker(name, previous), rpm=d.rpm, tpm=d.tpm)
                self._deployments[name] = deployment
            entries.append((deployment, d.weight))
            if d.rpm is not None or d.tpm is not None:  # waiting helps only where a limit frees up
                queue_ms = max(queue_ms, d.queue_ms if d.queue_ms is not None else self.routing.queue_ms)
        route = Route(model.name, entries, model.hedge)
        route.queue_ms = queue_ms
        return route

    def _passthrough(self, provider: str, previous: RoutingTable | None) -> Deployment:
        deployment = self._deployments.get(provider)
        if deployment is None:
            old = previous._deployments.get(provider) if previous is not None else None
            if old is not None and old.models is not None:
                models = old.models
                models.reconfigure(self.routing)
            else:
                models = ModelBreakers(self.routing, self._breaker(provider, previous))
            deployment = Deployment(provider, self.providers[provider], None, self.keyrings[provider],
                                    models.shared, models=models)
            self._deployments[provider] = deployment
        return deployment

    def _breaker(self, name: str, previous: RoutingTable | None) -> Breaker:
        old = previous._deployments.get(name) if previous is not None else None
        if old is not None:
            old.breaker.reconfigure(self.routing)
            return old.breaker
        return Breaker(self.routing)


def _keyring(provider: Provider, previous: RoutingTable | None) -> KeyRing:
    """The provider's keys; a key the previous table knew keeps its cooldown and disabled state."""
    old_ring = previous.keyrings.get(provider.name) if previous is not None else None
    old = {k.secret: k for k in old_ring.keys} if old_ring is not None else {}
    config = provider.config
    secrets = config.api_keys or (config.api_key,)
    states = []
    for secret in secrets:
        headers = provider.auth_headers(secret)
        kept = old.get(secret)
        states.append(kept if kept is not None and kept.auth_headers == headers else KeyState(secret, headers))
    return KeyRing(states)


def _keep_access_tokens(providers: dict[str, Provider], previous: dict[str, Provider]) -> None:
    """A Vertex provider whose credentials did not change keeps its cached access token over a reload (no request
    waits for a new one)."""
    for name, provider in providers.items():
        old = previous.get(name)
        if old is not None and hasattr(old, "tokens") and hasattr(provider, "tokens") and \
                old.config.credentials_file == provider.config.credentials_file:
            provider.tokens = old.tokens
