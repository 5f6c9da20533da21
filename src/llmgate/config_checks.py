"""Checks on resolved settings that types alone cannot express: ranges, URLs, unique names, references between
aliases, providers and fallbacks, route syntax. Each error names the key and says what was expected."""

from __future__ import annotations

from llmgate.config import LOG_LEVELS, ConfigError, ModelConfig, ProviderConfig, Settings


def validate(settings: Settings) -> None:
    """Check what types alone cannot: ranges, URLs, unique names, route syntax."""
    server = settings.server
    if not 0 < server.port < 65536:
        raise ConfigError(f"server.port: expected 1-65535, got {server.port}")
    if server.workers < 1:
        raise ConfigError(f"server.workers: expected at least 1, got {server.workers}")
    if server.single_process is True and server.workers != 1:
        raise ConfigError(f"server.single_process: serves one worker in this process; got workers = {server.workers}")
    if server.max_connections < 1:
        raise ConfigError(f"server.max_connections: expected at least 1, got {server.max_connections}")
    if server.backlog < 128:
        raise ConfigError(f"server.backlog: expected at least 128, got {server.backlog}")
    if server.max_body_bytes < 1024:
        raise ConfigError(f"server.max_body_bytes: expected at least 1024, got {server.max_body_bytes}")
    if server.models_cache_ttl_s < 0:
        raise ConfigError("server.models_cache_ttl_s: expected a number >= 0")
    if server.stream_keepalive_s <= 0:
        raise ConfigError("server.stream_keepalive_s: expected a number of seconds > 0")
    if server.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(f"server.log_level: expected one of {', '.join(LOG_LEVELS)}, got {server.log_level!r}")
    _validate_tokens(settings)
    _validate_usage(settings)
    for i, route in enumerate(server.extra_routes):
        parse_route(route, f"server.extra_routes[{i}]")
    _validate_providers(settings.providers)
    validate_routing(settings)


def _validate_providers(providers: tuple[ProviderConfig, ...]) -> None:
    seen: set[str] = set()
    for i, provider in enumerate(providers):
        where = f"providers[{i}]"
        if provider.name in seen:
            raise ConfigError(f"{where}.name: {provider.name!r} is used by another provider")
        seen.add(provider.name)
        if not provider.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.base_url: expected an http:// or https:// URL, got {provider.base_url!r}")
        for field in ("connect_s", "first_byte_s", "idle_s"):
            if getattr(provider.timeouts, field) <= 0:
                raise ConfigError(f"{where}.timeouts.{field}: expected a number of seconds > 0")


def validate_routing(settings: Settings) -> None:
    """Aliases name known providers and fallbacks, weights are positive, the [routing] numbers make sense."""
    providers = {p.name for p in settings.providers}
    aliases = [m.name for m in settings.models]
    declared = {m for p in settings.providers for m in p.models}
    for i, model in enumerate(settings.models):
        where = f"models[{i}]"
        if not model.name:
            raise ConfigError(f"{where}.name: expected a model name")
        if aliases.index(model.name) != i:
            raise ConfigError(f"{where}.name: {model.name!r} is declared twice")
        _validate_deployments(model, where, providers)
        for j, fallback in enumerate(model.fallbacks):
            if fallback not in aliases and fallback not in declared:
                raise ConfigError(f"{where}.fallbacks[{j}]: {fallback!r} is not a model alias")
        if model.hedge is not None and not 0 < model.hedge.max_ratio <= 1:
            raise ConfigError(f"{where}.hedge.max_ratio: expected a number in (0, 1]")
    routing = settings.routing
    for field in ("max_attempts", "breaker_failures", "breaker_min_requests"):
        if getattr(routing, field) < 1:
            raise ConfigError(f"routing.{field}: expected an integer >= 1")
    for field in ("budget_s", "cooldown_s", "breaker_window_s", "breaker_open_s", "max_cooldown_s"):
        if getattr(routing, field) <= 0:
            raise ConfigError(f"routing.{field}: expected a number of seconds > 0")
    if not 0 < routing.breaker_error_rate <= 1:
        raise ConfigError("routing.breaker_error_rate: expected a number in (0, 1]")


def _validate_deployments(model: ModelConfig, where: str, providers: set[str]) -> None:
    if not model.deployments:
        raise ConfigError(f"{where}.deployments: expected at least one deployment")
    for j, deployment in enumerate(model.deployments):
        if deployment.provider not in providers:
            raise ConfigError(f"{where}.deployments[{j}].provider: no provider is named {deployment.provider!r}")
        if not deployment.weight > 0:
            raise ConfigError(f"{where}.deployments[{j}].weight: expected a number > 0")
        for limit in ("rpm", "tpm"):
            value = getattr(deployment, limit)
            if value is not None and value < 1:
                raise ConfigError(f"{where}.deployments[{j}].{limit}: expected an integer >= 1")


def _validate_tokens(settings: Settings) -> None:
    """The store, cache and Redis settings."""
    for name in ("usage_queue_size", "usage_batch_size"):
        if getattr(settings.server, name) < 1:
            raise ConfigError(f"server.{name}: expected at least 1, got {getattr(settings.server, name)}")
    for field in ("token_cache_ttl_s", "token_negative_ttl_s", "usage_flush_s"):
        if not getattr(settings.server, field) > 0:
            raise ConfigError(f"server.{field}: expected a number of seconds > 0")
    url = settings.database_url
    if url and not url.startswith(("postgres://", "postgresql://", "sqlite:")):
        raise ConfigError("LLMGATE_DATABASE_URL: expected postgresql://... or sqlite:///path")
    if settings.redis_url and not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("LLMGATE_REDIS_URL: expected redis://..., rediss://... or unix://...")


def _validate_usage(settings: Settings) -> None:
    """The usage sinks' settings and the price table."""
    server = settings.server
    for name in ("usage_jsonl_max_bytes", "raw_log_max_bytes"):
        if getattr(server, name) < 1024:
            raise ConfigError(f"server.{name}: expected at least 1024, got {getattr(server, name)}")
    for name in ("usage_jsonl_backups", "raw_log_backups", "usage_http_retries"):
        if getattr(server, name) < 0:
            raise ConfigError(f"server.{name}: expected an integer >= 0, got {getattr(server, name)}")
    if not server.usage_http_timeout_s > 0:
        raise ConfigError("server.usage_http_timeout_s: expected a number of seconds > 0")
    if server.usage_http_url and not server.usage_http_url.startswith(("http://", "https://")):
        raise ConfigError(f"server.usage_http_url: expected an http:// or https:// URL, got {server.usage_http_url!r}")


def parse_route(route: str, where: str) -> tuple[str, str]:
    """`"POST /v1/moderations"` → `("POST", "/moderations")`, the path relative to /v1."""
    method, _, path = route.strip().partition(" ")
    path = path.strip()
    if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"} or not path.startswith("/v1/"):
        raise ConfigError(f'{where}: expected "METHOD /v1/path" (e.g. "POST /v1/moderations"), got {route!r}')
    return method.upper(), path[3:].rstrip("/")
