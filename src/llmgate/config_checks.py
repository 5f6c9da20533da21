"""Checks on decoded settings that types cannot express: references between sections (deployments name
providers, fallbacks name aliases), unique names, settings that exclude each other. Ranges, enumerations and
URL shapes are the types' own constraints (config_schema.py)."""

from __future__ import annotations

from llmgate.config_decode import Problem
from llmgate.config_schema import ModelConfig, ProviderConfig, Settings
from llmgate.config_types import ConfigError


def check_settings(settings: Settings) -> list[Problem]:
    """Every problem between the settings' sections, each with the key path it is about."""
    problems: list[Problem] = []
    server = settings.server
    if server.single_process is True and server.workers != 1:
        problems.append(Problem(("server", "single_process"),
                                f"serves one worker in this process; got workers = {server.workers}"))
    seen: set[str] = set()
    for i, provider in enumerate(settings.providers):
        if provider.name in seen:
            problems.append(Problem(("providers", i, "name"), f"{provider.name!r} is used by another provider"))
        seen.add(provider.name)
        problems += _check_provider(provider, i)
    problems += _check_routing(settings)
    return problems


def _check_provider(provider: ProviderConfig, index: int) -> list[Problem]:
    """The keys a provider's kind needs: a base URL for kinds without a default, a region for bedrock, a project
    and location for vertex."""
    problems = []
    if provider.kind == "bedrock" and not provider.region:  # its base URL is made from the region
        problems.append(Problem(("providers", index, "region"), "is required for kind 'bedrock' (e.g. us-east-1)"))
    elif not provider.base_url:
        problems.append(Problem(("providers", index, "base_url"), f"is required for kind {provider.kind!r}"))
    if provider.kind == "vertex":
        problems += [Problem(("providers", index, key), "is required for kind 'vertex'")
                     for key in ("project", "location") if not getattr(provider, key)]
    return problems


def _check_routing(settings: Settings) -> list[Problem]:
    """Aliases are declared once, their deployments name known providers and their fallbacks known models."""
    problems: list[Problem] = []
    providers = {p.name for p in settings.providers}
    aliases = [m.name for m in settings.models]
    declared = {m for p in settings.providers for m in p.models}
    for i, model in enumerate(settings.models):
        if aliases.index(model.name) != i:
            problems.append(Problem(("models", i, "name"), f"{model.name!r} is declared twice"))
        problems += _check_deployments(model, i, providers)
        for j, fallback in enumerate(model.fallbacks):
            if fallback not in aliases and fallback not in declared:
                problems.append(Problem(("models", i, "fallbacks", j), f"{fallback!r} is not a model alias"))
    return problems


def _check_deployments(model: ModelConfig, index: int, providers: set[str]) -> list[Problem]:
    return [Problem(("models", index, "deployments", j, "provider"), f"no provider is named {deployment.provider!r}")
            for j, deployment in enumerate(model.deployments) if deployment.provider not in providers]


def parse_route(route: str, where: str) -> tuple[str, str]:
    """`"POST /v1/moderations"` → `("POST", "/moderations")`, the path relative to /v1."""
    method, _, path = route.strip().partition(" ")
    path = path.strip()
    if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"} or not path.startswith("/v1/"):
        raise ConfigError(f'{where}: expected "METHOD /v1/path" (e.g. "POST /v1/moderations"), got {route!r}')
    return method.upper(), path[3:].rstrip("/")
