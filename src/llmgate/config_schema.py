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
from typing import Any, Literal

import msgspec

from llmgate.usage.prices import Price, decode_prices

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024

ProviderKind = Literal["openai", "azure", "anthropic"]
Capability = Literal["chat", "completions", "embeddings", "images", "audio", "responses", "messages"]


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
    """One upstream API: where it is, how to authenticate, what it can do."""

    name: str
    """Unique name, used in logs, metrics and deployment names."""
    base_url: str
    """`openai`: the base URL with its version prefix, e.g. `https://api.openai.com/v1`; `azure`: the resource,
    e.g. `https://my-resource.openai.azure.com`; `anthropic`: e.g. `https://api.anthropic.com`."""
    kind: ProviderKind = "openai"
    """`openai` for any OpenAI-compatible API (OpenAI, OpenRouter, Groq, Together, vLLM, Ollama, ...), `azure` for
    Azure OpenAI's deployment paths and `api-key` header, `anthropic` for Anthropic's `x-api-key` auth."""
    api_key: str = ""
    """The provider's key, or `env:VAR` to read it from the environment variable VAR."""
    api_keys: tuple[str, ...] = ()
    """More keys (each may be `env:VAR`), rotated least-recently-used first; `api_key` is the first when set."""
    api_version: str = ""
    """`azure`: the `api-version` query parameter (default 2024-10-21); `anthropic`: the `anthropic-version`
    header sent when the caller sends none (default 2023-06-01)."""
    models: tuple[str, ...] = ()
    """Model names this provider serves as they are (a trailing `*` matches a prefix, e.g. `claude-*`); a
    provider that declares none and that no `[[models]]` alias uses passes every other model through."""
    capabilities: tuple[Capability, ...] | None = None
    """What the provider can serve (chat, completions, embeddings, images, audio, responses, messages); default:
    all but `messages` for openai and azure, `messages` and `chat` for anthropic."""
    timeouts: Timeouts = Timeouts()
    stream_usage: bool = True
    """With the usage log on, ask this provider's chat/completions streams for their usage chunk
    (`stream_options.include_usage`, removed again from what the client gets); turn off for an upstream that
    rejects `stream_options` (tokens are then estimated with tiktoken)."""


class DeploymentConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One place an alias can be served: a provider and the model name it knows."""

    provider: str
    """The `name` of a provider."""
    model: str = ""
    """The model name sent upstream (the Azure deployment name for `azure`); default: the alias itself."""
    weight: float = 1.0
    """Share of the alias's traffic among its healthy deployments."""
    rpm: int | None = None
    """Requests per minute this deployment may receive (per worker process); at it, the deployment is skipped
    until its minute is over."""
    tpm: int | None = None
    """Tokens per minute (per worker process), counted from each answer's usage: answers on an alias whose
    deployments have a tpm are read for it (streams are asked for their usage chunk, which a client that did
    not ask for it does not see); at it, the deployment is skipped until its minute is over."""


class HedgeConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Opt-in hedging: a second attempt when the first has produced no byte by a deadline."""

    after_ms: float | None = None
    """The deadline; default: the alias's recent p95 time to first byte (with a 1 s floor until known)."""
    max_ratio: float = 0.05
    """Hedged requests at most this share of the alias's requests."""


class ModelConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A public model name (alias) and the deployments that serve it, in order of preference."""

    name: str
    deployments: tuple[DeploymentConfig, ...]
    fallbacks: tuple[str, ...] = ()
    """Aliases tried, in order, when every deployment of this one failed or is unavailable."""
    hedge: HedgeConfig | None = None


class RoutingConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The `[routing]` table: retries, cooldowns and circuit breakers."""

    max_attempts: int = 4
    """Upstream attempts per request, hedges excluded."""
    budget_s: float = 30.0
    """No new attempt starts once this long has passed since the request came."""
    backoff_base_ms: float = 25.0
    """Wait before retry n: base * 2**(n-1), capped by backoff_max_ms, times a random factor in [0.5, 1]."""
    backoff_max_ms: float = 1000.0
    cooldown_s: float = 30.0
    """How long a key rests after a 429 that says nothing (no retry-after / x-ratelimit-reset-*)."""
    max_cooldown_s: float = 3600.0
    """Cap on what an upstream's retry-after can ask for."""
    breaker_failures: int = 5
    """Consecutive failures (5xx, connection errors, timeouts) that open a deployment's breaker."""
    breaker_error_rate: float = 0.5
    """... or this failure rate over the window, once it holds breaker_min_requests."""
    breaker_min_requests: int = 20
    breaker_window_s: float = 30.0
    breaker_open_s: float = 15.0
    """How long an open breaker waits before letting one probe request through (half-open)."""


class ServerConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The `[server]` table of the config file; each key also has an `LLMGATE_*` environment variable."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    single_process: bool | None = None
    """Serve in `llmgate serve`'s own process (granian's embedded server): no supervisor process, ~35 MB less
    resident memory, the same throughput; a crash ends the process (restarting it is the container runtime's or
    systemd's job) and granian calls the mode experimental. Unset (the default): one process when workers = 1,
    granian's supervisor (which respawns a crashed worker) for more. false: the supervisor for one worker too."""
    max_connections: int = 10_000
    """Client connections one worker holds open at once (granian's `backpressure`, which counts connections, idle
    keep-alive ones too, not requests in flight); past it, new connections wait in the backlog. Every stream holds
    one for its whole length. granian's embedded server defaults to 128: a client pool of 200 connections stalled
    the ones past 128 until others closed."""
    backlog: int = 2048
    """Connections the kernel queues for accepting (capped by net.core.somaxconn)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body accepted on /v1; bigger ones get 413."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS; CORS is off when empty."""
    extra_routes: tuple[str, ...] = ()
    """More `/v1` routes to pass through, as `"METHOD /v1/path"`, e.g. `"POST /v1/moderations"`."""
    models_cache_ttl_s: float = 60.0
    """How long the upstream's model list is cached for `GET /v1/models`."""
    stream_keepalive_s: float = 15.0
    """While a stream waits this long for the upstream's first byte, send `: keep-alive` SSE comments."""
    log_level: str = "INFO"
    log_json: bool = False
    """Log JSON lines (one object a line: time, level, message, request_id, upstream_request_id, ...) instead of
    the human format."""
    shed_lag_ms: float = 0.0
    """When the event loop lags more than this (ms), `/v1` requests get 503 with `retry-after` at once instead of
    queueing behind the backlog; 0: never shed."""
    data_dir: str = "./data"
    """Where the embedded SQLite store keeps its file (`llmgate.db`) when LLMGATE_DATABASE_URL is not set."""
    token_cache_ttl_s: float = 5.0
    """How long a virtual token is trusted from memory; without Redis, a revocation made on another instance
    takes effect here within this time (on the revoking instance, and with Redis everywhere, at once)."""
    token_negative_ttl_s: float = 1.0
    """How long an unknown token is remembered as unknown (so guesses do not reach the store)."""
    meter_every_token: bool = False
    """Count the LLM tokens of every virtual token's answers into its `tokens_used`. Off, they are counted only for
    a token with a token budget, a cost budget or a tpm limit, and for every request while the usage log is on.
    Counting a stream means asking the upstream for its usage chunk and removing it again, 6-8% of a stream
    request's CPU; a token without such limits does not pay it: its streams pass through untouched, as the
    master key's do."""
    usage_flush_s: float = 1.0
    """How often counted requests and tokens are written back to the store, in one batch; also the longest a
    usage event waits in the event bus before it is written to the sinks."""
    usage_log: bool = False
    """Log one usage event per /v1 request (tokens, cost, latency) to the store and any other configured sink.
    On, streams are read for their usage chunk (OpenAI streams are asked for one, which the client does not see
    unless it asked for it too); off, streams stay on the zero-parse path."""
    usage_queue_size: int = 10_000
    """Usage events held in memory waiting for the sinks; past it, events spill to `usage_spill_path`."""
    usage_batch_size: int = 500
    """Usage events written to the sinks in one batch at most; smaller batches hold a one-core gateway's CPU for
    less at a time (lower p99) at the cost of more transactions (benchmarks/README.md)."""
    usage_spill_path: str = ""
    """JSONL file the events go to when the queue is full, and where the HTTP sink puts a batch it gave up on;
    default `<data_dir>/usage-spill.jsonl`."""
    usage_store: bool = True
    """With the usage log on, write the events to the store's `usage` table (what `GET /manage/usage` reads)."""
    usage_jsonl_path: str = ""
    """Also write usage events to this JSONL file (one event a line); setting it turns the usage log on."""
    usage_jsonl_max_bytes: int = 100 * 1024 * 1024
    """Rotate the usage JSONL file before a write would take it past this size (`file.1`, `file.2`, ...)."""
    usage_jsonl_backups: int = 5
    """Rotated usage JSONL files kept; the oldest is deleted."""
    usage_jsonl_fsync: bool = True
    """fsync the usage JSONL file after each batch (at most one fsync per `usage_flush_s`); off, a crash of the
    machine (not of llmgate) can lose the last batches the OS had not written yet."""
    usage_http_url: str = ""
    """POST usage events, a JSON array per batch, to this URL; setting it turns the usage log on."""
    usage_http_retries: int = 3
    """Retries of a failed POST (exponential backoff from 0.5 s); then the batch goes to the spill file."""
    usage_http_timeout_s: float = 10.0
    """Timeout of one POST to `usage_http_url`."""
    raw_log: bool = False
    """Log every /v1 request and response body in full (stream chunks included) to `raw_log_path`; secrets in
    headers are never written, and keys found in bodies are masked. For debugging: bodies hold user data.
    Turns the usage log on (the raw lines are written with the usage events)."""
    raw_log_path: str = ""
    """The raw log's JSONL file; default `<data_dir>/raw.jsonl`."""
    raw_log_max_bytes: int = 100 * 1024 * 1024
    """Rotate the raw log before a write would take it past this size."""
    raw_log_backups: int = 3
    """Rotated raw log files kept."""


class FileConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The whole TOML config file."""

    server: ServerConfig = ServerConfig()
    routing: RoutingConfig = RoutingConfig()
    providers: tuple[ProviderConfig, ...] = ()
    models: tuple[ModelConfig, ...] = ()
    prices: dict[str, Any] = {}
    """Model name (a trailing `*` matches a prefix) → its price: `[prices."gpt-4o"]` (usage/prices.py)."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Everything llmgate runs with, resolved: secrets read, defaults applied."""

    server: ServerConfig
    providers: tuple[ProviderConfig, ...]
    """Keys resolved: `api_keys` holds every key (secrets, no `env:`), `api_key` the first."""
    models: tuple[ModelConfig, ...] = ()
    routing: RoutingConfig = RoutingConfig()
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
    prices: dict[str, Price] = {}
    """Per-model prices from the config file, for the usage events' `cost`."""
    usage_http_token: str | None = None
    """`LLMGATE_USAGE_HTTP_TOKEN`: sent as `Authorization: Bearer ...` with the HTTP usage sink's POSTs."""
    metrics_token: str | None = None
    """`LLMGATE_METRICS_TOKEN`: when set, `GET /metrics` requires it as `Authorization: Bearer ...`."""


# Environment variable → (key in [server], type). Kept in one table so .env.example can be checked against it.
SERVER_ENV: dict[str, tuple[str, type]] = {
    "LLMGATE_HOST": ("host", str),
    "LLMGATE_PORT": ("port", int),
    "LLMGATE_WORKERS": ("workers", int),
    "LLMGATE_SINGLE_PROCESS": ("single_process", bool),
    "LLMGATE_MAX_CONNECTIONS": ("max_connections", int),
    "LLMGATE_BACKLOG": ("backlog", int),
    "LLMGATE_MAX_BODY_BYTES": ("max_body_bytes", int),
    "LLMGATE_CORS_ORIGINS": ("cors_origins", tuple),
    "LLMGATE_MODELS_CACHE_TTL_S": ("models_cache_ttl_s", float),
    "LLMGATE_STREAM_KEEPALIVE_S": ("stream_keepalive_s", float),
    "LLMGATE_LOG_LEVEL": ("log_level", str),
    "LLMGATE_LOG_JSON": ("log_json", bool),
    "LLMGATE_SHED_LAG_MS": ("shed_lag_ms", float),
    "LLMGATE_DATA_DIR": ("data_dir", str),
    "LLMGATE_TOKEN_CACHE_TTL_S": ("token_cache_ttl_s", float),
    "LLMGATE_TOKEN_NEGATIVE_TTL_S": ("token_negative_ttl_s", float),
    "LLMGATE_USAGE_FLUSH_S": ("usage_flush_s", float),
    "LLMGATE_USAGE_LOG": ("usage_log", bool),
    "LLMGATE_METER_EVERY_TOKEN": ("meter_every_token", bool),
    "LLMGATE_USAGE_QUEUE_SIZE": ("usage_queue_size", int),
    "LLMGATE_USAGE_BATCH_SIZE": ("usage_batch_size", int),
    "LLMGATE_USAGE_SPILL_PATH": ("usage_spill_path", str),
    "LLMGATE_USAGE_STORE": ("usage_store", bool),
    "LLMGATE_USAGE_JSONL": ("usage_jsonl_path", str),
    "LLMGATE_USAGE_JSONL_MAX_BYTES": ("usage_jsonl_max_bytes", int),
    "LLMGATE_USAGE_JSONL_BACKUPS": ("usage_jsonl_backups", int),
    "LLMGATE_USAGE_JSONL_FSYNC": ("usage_jsonl_fsync", bool),
    "LLMGATE_USAGE_HTTP_URL": ("usage_http_url", str),
    "LLMGATE_USAGE_HTTP_RETRIES": ("usage_http_retries", int),
    "LLMGATE_USAGE_HTTP_TIMEOUT_S": ("usage_http_timeout_s", float),
    "LLMGATE_RAW_LOG": ("raw_log", bool),
    "LLMGATE_RAW_LOG_PATH": ("raw_log_path", str),
    "LLMGATE_RAW_LOG_MAX_BYTES": ("raw_log_max_bytes", int),
    "LLMGATE_RAW_LOG_BACKUPS": ("raw_log_backups", int),
}
OTHER_ENV = ("LLMGATE_CONFIG", "LLMGATE_MASTER_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY",
             "ANTHROPIC_BASE_URL", "LLMGATE_MANAGEMENT_TOKEN", "LLMGATE_SECRET_KEY", "LLMGATE_DATABASE_URL",
             "LLMGATE_REDIS_URL", "LLMGATE_USAGE_HTTP_TOKEN", "LLMGATE_METRICS_TOKEN",
             "LLMGATE_URL")  # LLMGATE_URL: read by the `llmgate project|token` commands only
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def load_settings(env: Mapping[str, str] | None = None, config_path: str | None = None) -> Settings:
    """Resolve the settings from `env` (default: os.environ) and the TOML file at `config_path` or LLMGATE_CONFIG."""
    env = os.environ if env is None else env
    path = config_path or env.get("LLMGATE_CONFIG") or None
    file_config = read_config_file(path) if path else FileConfig()
    server = _apply_server_env(file_config.server, env)
    if server.usage_jsonl_path or server.usage_http_url or server.raw_log:  # a sink means usage is logged
        server = msgspec.structs.replace(server, usage_log=True)
    providers = file_config.providers or _providers_from_sdk_env(env)
    providers = tuple(_resolve_provider(p, i, env) for i, p in enumerate(providers))
    settings = Settings(
        server=server,
        providers=providers,
        models=file_config.models,
        routing=file_config.routing,
        master_key=env.get("LLMGATE_MASTER_KEY") or None,
        management_token=env.get("LLMGATE_MANAGEMENT_TOKEN") or None,
        secret_key=env.get("LLMGATE_SECRET_KEY") or None,
        database_url=env.get("LLMGATE_DATABASE_URL") or None,
        redis_url=env.get("LLMGATE_REDIS_URL") or None,
        prices=_decode_prices(file_config.prices),
        usage_http_token=env.get("LLMGATE_USAGE_HTTP_TOKEN") or None,
        metrics_token=env.get("LLMGATE_METRICS_TOKEN") or None,
        config_path=path,
        has_config_file=path is not None,
    )
    from llmgate.config_checks import validate  # imports this module: loaded at the first call

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


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_flag(var: str, raw: str) -> bool:
    """An on/off environment variable: 1/true/yes/on or 0/false/no/off."""
    value = raw.strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ConfigError(f"{var}={raw!r}: expected 1/true/yes/on or 0/false/no/off")


def _apply_server_env(server: ServerConfig, env: Mapping[str, str]) -> ServerConfig:
    changes: dict[str, object] = {}
    for var, (key, kind) in SERVER_ENV.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        if kind is tuple:
            changes[key] = tuple(item.strip() for item in raw.split(",") if item.strip())
            continue
        if kind is bool:
            changes[key] = parse_flag(var, raw)
            continue
        try:
            changes[key] = kind(raw)
        except ValueError:
            raise ConfigError(f"{var}={raw!r}: expected {'an integer' if kind is int else 'a number'}") from None
    return msgspec.structs.replace(server, **changes) if changes else server


def _providers_from_sdk_env(env: Mapping[str, str]) -> tuple[ProviderConfig, ...]:
    """No config file: providers from the SDKs' own variables. OpenAI passes every model through; Anthropic
    (when ANTHROPIC_API_KEY or ANTHROPIC_BASE_URL is set) serves the `claude-*` names."""
    openai = ProviderConfig(
        name="openai",
        base_url=env.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL,
        api_key=env.get("OPENAI_API_KEY", ""),
    )
    if not (env.get("ANTHROPIC_API_KEY") or env.get("ANTHROPIC_BASE_URL")):
        return (openai,)
    anthropic = ProviderConfig(
        name="anthropic",
        kind="anthropic",
        base_url=env.get("ANTHROPIC_BASE_URL") or DEFAULT_ANTHROPIC_BASE_URL,
        api_key=env.get("ANTHROPIC_API_KEY", ""),
        models=("claude-*",),
    )
    return anthropic, openai


def _resolve_key(key: str, where: str, env: Mapping[str, str]) -> str:
    if not key.startswith("env:"):
        return key
    var = key[4:]
    if not var or var not in env:
        raise ConfigError(f"{where}: refers to environment variable {var!r}, which is not set")
    return env[var]


def _resolve_provider(provider: ProviderConfig, index: int, env: Mapping[str, str]) -> ProviderConfig:
    """Read `env:VAR` keys into `api_keys` (all) and `api_key` (the first); normalise the base URL."""
    keys = [_resolve_key(provider.api_key, f"providers[{index}].api_key", env)] if provider.api_key else []
    keys += [_resolve_key(k, f"providers[{index}].api_keys[{i}]", env) for i, k in enumerate(provider.api_keys)]
    keys = [k for k in dict.fromkeys(keys) if k]
    return msgspec.structs.replace(provider, api_key=keys[0] if keys else "", api_keys=tuple(keys),
                                   base_url=provider.base_url.rstrip("/"))


def _decode_prices(raw: dict[str, Any]) -> dict[str, Price]:
    try:
        return decode_prices(raw)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
