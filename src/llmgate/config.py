"""Settings: environment variables and an optional TOML file, decoded into msgspec Structs.

Precedence: command-line flags > environment > config file > defaults. A wrong value stops start-up with a
`ConfigError` that names the key and says what was expected.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


class ConfigError(ValueError):
    """The configuration is wrong; the message names the key and what was expected."""


class Timeouts(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Upstream timeouts, in seconds."""

    connect_s: float = 10.0
    """Time to open a connection (TCP and TLS) to the upstream."""
    first_byte_s: float = 600.0
    """Time from sending the request to the first byte of the response (a long non-streaming completion
    produces nothing until it is done, hence the generous default)."""
    idle_s: float = 120.0
    """Longest silence between two chunks of a response body."""


class ProviderConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One upstream: OpenAI-compatible, or Anthropic's Messages API."""

    name: str
    """Unique name, used in logs and metrics."""
    base_url: str
    """Base URL including the version prefix, e.g. `https://api.openai.com/v1` or `https://api.anthropic.com/v1`."""
    kind: Literal["openai", "anthropic"] = "openai"
    """The upstream's dialect. `anthropic`: /v1/messages passes through natively (x-api-key auth), and OpenAI
    chat requests for its models are translated (llmgate/translate/)."""
    api_key: str = ""
    """The provider's key, or `env:VAR` to read it from the environment variable VAR."""
    models: tuple[str, ...] = ()
    """Model names this provider serves; empty means any model (a catch-all)."""
    timeouts: Timeouts = Timeouts()


class ServerConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The `[server]` table of the config file; each key also has an `LLMGATE_*` environment variable."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body accepted on /v1; bigger ones get 413."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS; CORS is off when empty."""
    extra_routes: tuple[str, ...] = ()
    """More `/v1` routes to pass through, as `"METHOD /v1/path"`, e.g. `"POST /v1/moderations"`."""
    models_cache_ttl_s: float = 60.0
    """How long the upstream's model list is cached for `GET /v1/models`."""
    log_level: str = "INFO"
    data_dir: str = "./data"
    """Where the embedded SQLite store keeps its file (`llmgate.db`) when LLMGATE_DATABASE_URL is not set."""
    token_cache_ttl_s: float = 5.0
    """How long a virtual token is trusted from memory; without Redis, a revocation made on another instance
    takes effect here within this time (on the revoking instance, and with Redis everywhere, at once)."""
    token_negative_ttl_s: float = 1.0
    """How long an unknown token is remembered as unknown (so guesses do not reach the store)."""
    usage_flush_s: float = 1.0
    """How often counted requests and tokens are written back to the store, in one batch."""


class FileConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The whole TOML config file."""

    server: ServerConfig = ServerConfig()
    providers: tuple[ProviderConfig, ...] = ()


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Everything llmgate runs with, resolved: secrets read, defaults applied."""

    server: ServerConfig
    providers: tuple[ProviderConfig, ...]
    master_key: str | None = None
    """`LLMGATE_MASTER_KEY`: required as a bearer (or x-api-key) on every /v1 request when set."""
    config_path: str | None = None
    has_config_file: bool = False
    management_token: str | None = None
    """`LLMGATE_MANAGEMENT_TOKEN`: the bearer the /manage API requires; the API is disabled when unset."""
    secret_key: str | None = None
    """`LLMGATE_SECRET_KEY`: encrypts per-project upstream keys at rest; without it they cannot be stored."""
    database_url: str | None = None
    """`LLMGATE_DATABASE_URL`: postgresql://... to share projects and tokens between instances (else SQLite)."""
    redis_url: str | None = None
    """`LLMGATE_REDIS_URL`: redis://... to share rate limits and revocations between instances."""


# Environment variable → (key in [server], type). Kept in one table so .env.example can be checked against it.
SERVER_ENV: dict[str, tuple[str, type]] = {
    "LLMGATE_HOST": ("host", str),
    "LLMGATE_PORT": ("port", int),
    "LLMGATE_WORKERS": ("workers", int),
    "LLMGATE_MAX_BODY_BYTES": ("max_body_bytes", int),
    "LLMGATE_CORS_ORIGINS": ("cors_origins", tuple),
    "LLMGATE_MODELS_CACHE_TTL_S": ("models_cache_ttl_s", float),
    "LLMGATE_LOG_LEVEL": ("log_level", str),
    "LLMGATE_DATA_DIR": ("data_dir", str),
    "LLMGATE_TOKEN_CACHE_TTL_S": ("token_cache_ttl_s", float),
    "LLMGATE_TOKEN_NEGATIVE_TTL_S": ("token_negative_ttl_s", float),
    "LLMGATE_USAGE_FLUSH_S": ("usage_flush_s", float),
}
OTHER_ENV = ("LLMGATE_CONFIG", "LLMGATE_MASTER_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "LLMGATE_MANAGEMENT_TOKEN",
             "LLMGATE_SECRET_KEY", "LLMGATE_DATABASE_URL", "LLMGATE_REDIS_URL",
             "LLMGATE_URL")  # LLMGATE_URL: read by the `llmgate project|token` commands only
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def load_settings(env: Mapping[str, str] | None = None, config_path: str | None = None) -> Settings:
    """Resolve the settings from `env` (default: os.environ) and the TOML file at `config_path` or LLMGATE_CONFIG."""
    env = os.environ if env is None else env
    path = config_path or env.get("LLMGATE_CONFIG") or None
    file_config = read_config_file(path) if path else FileConfig()
    server = _apply_server_env(file_config.server, env)
    providers = file_config.providers or (_provider_from_openai_env(env),)
    providers = tuple(_resolve_provider(p, i, env) for i, p in enumerate(providers))
    settings = Settings(
        server=server,
        providers=providers,
        master_key=env.get("LLMGATE_MASTER_KEY") or None,
        management_token=env.get("LLMGATE_MANAGEMENT_TOKEN") or None,
        secret_key=env.get("LLMGATE_SECRET_KEY") or None,
        database_url=env.get("LLMGATE_DATABASE_URL") or None,
        redis_url=env.get("LLMGATE_REDIS_URL") or None,
        config_path=path,
        has_config_file=path is not None,
    )
    validate(settings)
    return settings


def read_config_file(path: str) -> FileConfig:
    """Read and decode the TOML config file; errors name the file and the key."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path!r} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path!r} is not valid TOML: {exc}") from None
    try:
        return msgspec.convert(data, FileConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"config file {path!r}: {_describe_validation_error(exc)}") from None


def _describe_validation_error(exc: msgspec.ValidationError) -> str:
    """Turn msgspec's `... - at `$.providers[0].base_url`` into `providers[0].base_url: ...`."""
    message = str(exc)
    if " - at `$." in message:
        what, _, where = message.rpartition(" - at `$.")
        return f"{where.rstrip('`')}: {what}"
    return message


def _apply_server_env(server: ServerConfig, env: Mapping[str, str]) -> ServerConfig:
    changes: dict[str, object] = {}
    for var, (key, kind) in SERVER_ENV.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        if kind is tuple:
            changes[key] = tuple(item.strip() for item in raw.split(",") if item.strip())
            continue
        try:
            changes[key] = kind(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r}: expected {'an integer' if kind is int else 'a number'}") from None
    return msgspec.structs.replace(server, **changes) if changes else server


def _provider_from_openai_env(env: Mapping[str, str]) -> ProviderConfig:
    """No config file: one provider from the OpenAI SDK's own variables, passing every model through."""
    return ProviderConfig(
        name="openai",
        base_url=env.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL,
        api_key=env.get("OPENAI_API_KEY", ""),
    )


def _resolve_provider(provider: ProviderConfig, index: int, env: Mapping[str, str]) -> ProviderConfig:
    """Read `env:VAR` keys and normalise the base URL."""
    key = provider.api_key
    if key.startswith("env:"):
        var = key[4:]
        if not var or var not in env:
            raise ConfigError(
                f"providers[{index}].api_key: refers to environment variable {var!r}, which is not set"
            )
        key = env[var]
    return msgspec.structs.replace(provider, api_key=key, base_url=provider.base_url.rstrip("/"))


def validate(settings: Settings) -> None:
    """Check what types alone cannot: ranges, URLs, unique names, route syntax."""
    server = settings.server
    if not 0 < server.port < 65536:
        raise ConfigError(f"server.port: expected 1-65535, got {server.port}")
    if server.workers < 1:
        raise ConfigError(f"server.workers: expected at least 1, got {server.workers}")
    if server.max_body_bytes < 1024:
        raise ConfigError(f"server.max_body_bytes: expected at least 1024, got {server.max_body_bytes}")
    if server.models_cache_ttl_s < 0:
        raise ConfigError("server.models_cache_ttl_s: expected a number >= 0")
    if server.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(f"server.log_level: expected one of {', '.join(LOG_LEVELS)}, got {server.log_level!r}")
    _validate_tokens(settings)
    for i, route in enumerate(server.extra_routes):
        parse_route(route, f"server.extra_routes[{i}]")
    seen: set[str] = set()
    for i, provider in enumerate(settings.providers):
        where = f"providers[{i}]"
        if provider.name in seen:
            raise ConfigError(f"{where}.name: {provider.name!r} is used by another provider")
        seen.add(provider.name)
        if not provider.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.base_url: expected an http:// or https:// URL, got {provider.base_url!r}")
        for field in ("connect_s", "first_byte_s", "idle_s"):
            if getattr(provider.timeouts, field) <= 0:
                raise ConfigError(f"{where}.timeouts.{field}: expected a number of seconds > 0")


def _validate_tokens(settings: Settings) -> None:
    """The store, cache and Redis settings."""
    for field in ("token_cache_ttl_s", "token_negative_ttl_s", "usage_flush_s"):
        if not getattr(settings.server, field) > 0:
            raise ConfigError(f"server.{field}: expected a number of seconds > 0")
    url = settings.database_url
    if url and not url.startswith(("postgres://", "postgresql://", "sqlite:")):
        raise ConfigError("LLMGATE_DATABASE_URL: expected postgresql://... or sqlite:///path")
    if settings.redis_url and not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("LLMGATE_REDIS_URL: expected redis://..., rediss://... or unix://...")


def parse_route(route: str, where: str) -> tuple[str, str]:
    """`"POST /v1/moderations"` → `("POST", "/moderations")`, the path relative to /v1."""
    method, _, path = route.strip().partition(" ")
    path = path.strip()
    if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"} or not path.startswith("/v1/"):
        raise ConfigError(f'{where}: expected "METHOD /v1/path" (e.g. "POST /v1/moderations"), got {route!r}')
    return method.upper(), path[3:].rstrip("/")


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
