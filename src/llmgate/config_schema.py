"""The config's schema: msgspec Structs whose types and `Meta` constraints say what each key accepts (ranges,
enumerations, URL shapes); `config.py` loads and checks them, `config_checks.py` adds what types cannot say."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from llmgate.config_access import AuthConfig, ProjectConfig
from llmgate.config_types import (
    DEFAULT_MAX_BODY_BYTES,
    Capability,
    Count,
    DatabaseUrl,
    FileSize,
    LogLevel,
    Millis,
    ModelName,
    ModelPattern,
    OptionalHttpUrl,
    Port,
    ProviderKind,
    Ratio,
    RedisUrl,
    Retained,
    Route,
    Seconds,
)
from llmgate.observe.tracing import TracingConfig
from llmgate.usage.prices import Price


class Timeouts(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Upstream timeouts, in seconds."""

    connect_s: Seconds = 10.0
    """Time to open a connection (TCP and TLS) to the upstream."""
    first_byte_s: Seconds = 600.0
    """Time from sending the request to the first byte of the response (a long non-streaming completion
    produces nothing until it is done, hence the generous default)."""
    idle_s: Seconds = 120.0
    """Longest silence between two chunks of a response body."""


class ProviderConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One upstream API: where it is, how to authenticate, what it can do."""

    name: str
    """Unique name, used in logs, metrics and deployment names."""
    base_url: OptionalHttpUrl = ""
    """`openai`: the base URL with its version prefix, e.g. `https://api.openai.com/v1`; `azure`: the resource,
    e.g. `https://my-resource.openai.azure.com`; `anthropic`: e.g. `https://api.anthropic.com`. Required for
    those three; the other kinds have a default that this overrides (`gemini`:
    `https://generativelanguage.googleapis.com`, `vertex`: `https://{location}-aiplatform.googleapis.com`,
    `bedrock`: `https://bedrock-runtime.{region}.amazonaws.com`, a named preset: its provider's URL)."""
    kind: ProviderKind = "openai"
    """`openai` for any OpenAI-compatible API, `azure` for Azure OpenAI's deployment paths and `api-key` header,
    `anthropic` for Anthropic's `x-api-key` auth, `gemini` for Google AI Studio's Gemini API, `vertex` for Google
    Cloud Vertex AI (Gemini and Claude models), `bedrock` for AWS Bedrock's Converse API (SigV4-signed with the
    standard AWS credentials); or a named OpenAI-compatible preset: `openrouter`, `groq`, `together`, `mistral`,
    `deepseek`, `xai`, `fireworks`, `perplexity`, `ollama`, `vllm`, `lmstudio` (docs/providers)."""
    api_key: str = ""
    """The provider's key, or `env:VAR` to read it from the environment variable VAR."""
    api_keys: tuple[str, ...] = ()
    """More keys (each may be `env:VAR`), rotated least-recently-used first; `api_key` is the first when set."""
    api_version: str = ""
    """`azure`: the `api-version` query parameter (default 2024-10-21); `anthropic`: the `anthropic-version`
    header sent when the caller sends none (default 2023-06-01)."""
    region: str = ""
    """`bedrock`: the AWS region, e.g. `us-east-1` (in the default base URL, and signed into every request)."""
    models: tuple[str, ...] = ()
    """Model names this provider serves as they are (a trailing `*` matches a prefix, e.g. `claude-*`); a
    provider that declares none and that no `[[models]]` alias uses passes every other model through."""
    capabilities: tuple[Capability, ...] | None = None
    """What the provider can serve (chat, completions, embeddings, images, audio, responses, messages); default:
    all but `messages` for openai and azure, `messages` and `chat` for anthropic."""
    project: str = ""
    """`vertex`: the Google Cloud project id."""
    location: str = ""
    """`vertex`: the region, e.g. `us-central1` (or `global`)."""
    credentials_file: str = ""
    """`vertex`: a service-account JSON key file, or `env:VAR` to read its path from VAR (e.g.
    `env:GOOGLE_APPLICATION_CREDENTIALS`); empty: the metadata server's credentials (workload identity)."""
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
    weight: Annotated[float, Meta(gt=0)] = 1.0
    """Share of the alias's traffic among its healthy deployments."""
    rpm: Count | None = None
    """Requests per minute this deployment may receive (per worker process); at it, the deployment is skipped
    until its minute is over."""
    tpm: Count | None = None
    """Tokens per minute (per worker process), counted from each answer's usage: answers on an alias whose
    deployments have a tpm are read for it (streams are asked for their usage chunk, which a client that did
    not ask for it does not see); at it, the deployment is skipped until its minute is over."""
    queue_ms: Millis | None = None
    """How long a request may wait for this deployment to come under its rpm/tpm when every deployment of the
    alias is at its limit; absent: `[routing] queue_ms`."""


class HedgeConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Opt-in hedging: a second attempt when the first has produced no byte by a deadline."""

    after_ms: Millis | None = None
    """The deadline; default: the alias's recent p95 time to first byte (with a 1 s floor until known)."""
    max_ratio: Ratio = 0.05
    """Hedged requests at most this share of the alias's requests."""


class ModelCache(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """An alias's own response cache: `cache = { ttl_s = 600 }` in its `[[models]]` entry."""

    ttl_s: Seconds
    """How long an answer of this alias is served from the cache (over `[cache] ttl_s`)."""


class ModelConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A public model name (alias) and the deployments that serve it, in order of preference."""

    name: ModelName
    deployments: Annotated[tuple[DeploymentConfig, ...],
                           Meta(min_length=1, extra={"expected": "at least one deployment"})]
    fallbacks: tuple[str, ...] = ()
    """Aliases tried, in order, when every deployment of this one failed or is unavailable."""
    hedge: HedgeConfig | None = None
    cache: ModelCache | None = None
    """Cache this alias's successful answers (docs/cache.md); default: `[cache] ttl_s`, if set."""


class RoutingConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The `[routing]` table: retries, cooldowns and circuit breakers."""

    max_attempts: Count = 4
    """Upstream attempts per request, hedges excluded."""
    budget_s: Seconds = 30.0
    """No new attempt starts once this long has passed since the request came."""
    backoff_base_ms: Millis = 25.0
    """Wait before retry n: base * 2**(n-1), capped by backoff_max_ms, times a random factor in [0.5, 1]."""
    backoff_max_ms: Millis = 1000.0
    cooldown_s: Seconds = 30.0
    """How long a key rests after a 429 that says nothing (no retry-after / x-ratelimit-reset-*)."""
    max_cooldown_s: Seconds = 3600.0
    """Cap on what an upstream's retry-after can ask for."""
    breaker_failures: Count = 5
    """Consecutive failures (5xx, connection errors, timeouts) that open a deployment's breaker."""
    breaker_error_rate: Ratio = 0.5
    """... or this failure rate over the window, once it holds breaker_min_requests."""
    breaker_min_requests: Count = 20
    breaker_window_s: Seconds = 30.0
    breaker_open_s: Seconds = 15.0
    queue_ms: Millis = 0.0
    """The deployments' default `queue_ms`: how long a request waits, in arrival order, for a deployment under
    its rpm/tpm when all of its alias's are at their limit (0: answered at once, 503)."""
    """How long an open breaker waits before letting one probe request through (half-open)."""


class ServerConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The `[server]` table of the config file; each key also has an `LLMGATE_*` environment variable."""

    host: str = "127.0.0.1"
    port: Port = 8000
    workers: Count = 1
    single_process: bool | None = None
    """Serve in `llmgate serve`'s own process (granian's embedded server): no supervisor process, less resident memory,
    the same throughput (benchmarks/README.md); a crash ends the process (restarting it is the container runtime's or
    systemd's job) and granian calls the mode experimental. Unset (the default): one process when workers = 1, granian's
    supervisor (which respawns a crashed worker) for more. false: the supervisor for one worker too."""
    max_connections: Count = 10_000
    """Client connections one worker holds open at once (granian's `backpressure`, which counts connections, idle
    keep-alive ones too, not requests in flight); past it, new connections wait in the backlog. Every stream holds
    one for its whole length. granian's embedded server defaults to 128: a client pool of 200 connections stalled
    the ones past 128 until others closed."""
    backlog: Annotated[int, Meta(ge=128)] = 2048
    """Connections the kernel queues for accepting (capped by net.core.somaxconn)."""
    max_body_bytes: FileSize = DEFAULT_MAX_BODY_BYTES
    """Largest request body accepted on /v1; bigger ones get 413."""
    body_timeout_s: Seconds = 60.0
    """How long a `/v1` request's body may take to arrive, whole, once its headers are in; past it the request gets
    408 and its connection is closed (a client that sends headers and then dribbles or stops would otherwise hold a
    connection slot for ever). A multipart upload's body is streamed upstream: only its first part is held to it."""
    max_header_bytes: Annotated[int, Meta(ge=8192)] = 64 * 1024
    """Largest request head (request line and headers together) granian reads; a bigger one is answered 431 by
    granian and the connection closed (nginx allows 8 KiB a line, 32 KiB in all; Envoy 60 KiB in all)."""
    auth_fail_burst: Retained = 20
    """Failed authentications (/v1 and /manage) one client address may make at once before it is answered 429 with
    `retry-after`; every address counts, loopback too; 0 turns the throttle off. Valid credentials are never
    slowed."""
    auth_fail_per_s: Seconds = 1.0
    """How fast an address regains failed attempts after `auth_fail_burst` is spent (attempts a second)."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS; CORS is off when empty."""
    extra_routes: tuple[Route, ...] = ()
    """More `/v1` routes to pass through, as `"METHOD /v1/path"`, e.g. `"POST /v1/moderations"`."""
    models_cache_ttl_s: Annotated[float, Meta(ge=0)] = 60.0
    """How long the upstream's model list is cached for `GET /v1/models`."""
    stream_keepalive_s: Seconds = 15.0
    """While a stream waits this long for the upstream's first byte, send `: keep-alive` SSE comments."""
    log_level: LogLevel = "INFO"
    log_json: bool = False
    """Log JSON lines (one object a line: time, level, message, request_id, upstream_request_id, ...) instead of
    the human format."""
    shed_lag_ms: Millis = 0.0
    """When the event loop lags more than this (ms), `/v1` requests get 503 with `retry-after` at once instead of
    queueing behind the backlog; 0: never shed."""
    data_dir: str = "./data"
    """Where the embedded SQLite store (`llmgate.db`, when LLMGATE_DATABASE_URL is not set) and the usage spill
    file live; it must be writable by the user llmgate runs as (`llmgate serve` checks it before it starts)."""
    token_cache_ttl_s: Seconds = 5.0
    """How long a virtual token is trusted from memory; without Redis, a revocation made on another instance
    takes effect here within this time (on the revoking instance, and with Redis everywhere, at once)."""
    token_negative_ttl_s: Seconds = 1.0
    """How long an unknown token is remembered as unknown (so guesses do not reach the store)."""
    meter_every_token: bool = False
    """Count the LLM tokens of every virtual token's answers into its `tokens_used`. Off, they are counted only for a
    token with a token budget, a cost budget or a tpm limit, and for every request while the usage log is on. Counting a
    stream means asking the upstream for its usage chunk and removing it again, a few percent of a stream request's CPU
    (benchmarks/README.md); a token without such limits does not pay it: its streams pass through untouched, as the
    master key's do."""
    usage_flush_s: Seconds = 1.0
    """How often counted requests and tokens are written back to the store, in one batch; also the longest a
    usage event waits in the event bus before it is written to the sinks."""
    usage_log: bool = True
    """Log one usage event per /v1 request (tokens, cost, latency) to the store and any other configured sink.
    On (the default: a gateway that hands out tokens is asked who used what), streams are read for their usage
    chunk (OpenAI streams are asked for one, which the client does not see unless it asked for it too); off
    (`LLMGATE_USAGE_LOG=0`, a pure pass-through edge), streams stay on the zero-parse path."""
    usage_queue_size: Count = 10_000
    """Usage events held in memory waiting for the sinks; past it, events spill to `usage_spill_path`."""
    usage_batch_size: Count = 100
    """Usage events written to the sinks in one batch at most; smaller batches hold a one-core gateway's CPU for
    less at a time (lower p99) at the cost of more transactions (benchmarks/README.md)."""
    usage_spill_path: str = ""
    """JSONL file the events go to when the queue is full, and where the HTTP sink puts a batch it gave up on;
    default `<data_dir>/usage-spill.jsonl`."""
    usage_store: bool = True
    """With the usage log on, write the events to the store's `usage` table (what `GET /manage/usage` reads)."""
    usage_jsonl_path: str = ""
    """Also write usage events to this JSONL file (one event a line); setting it turns the usage log on."""
    usage_jsonl_max_bytes: FileSize = 100 * 1024 * 1024
    """Rotate the usage JSONL file before a write would take it past this size (`file.1`, `file.2`, ...)."""
    usage_jsonl_backups: Retained = 5
    """Rotated usage JSONL files kept; the oldest is deleted."""
    usage_jsonl_fsync: bool = True
    """fsync the usage JSONL file after each batch (at most one fsync per `usage_flush_s`); off, a crash of the
    machine (not of llmgate) can lose the last batches the OS had not written yet."""
    usage_http_url: OptionalHttpUrl = ""
    """POST usage events, a JSON array per batch, to this URL; setting it turns the usage log on."""
    usage_http_retries: Retained = 3
    """Retries of a failed POST (exponential backoff from 0.5 s); then the batch goes to the spill file."""
    usage_http_timeout_s: Seconds = 10.0
    """Timeout of one POST to `usage_http_url`."""
    end_user_header: str = "x-llmgate-user"
    """The request header that names the end user a request is made for (recorded in usage, and limited by a
    project's `per_user` limits), when the body's OpenAI `user` field does not; empty: the body's field only."""
    alert_webhook_url: OptionalHttpUrl = ""
    """POST a JSON alert here when a budget passes its soft limit (`alert_threshold`), once per period; retried
    with backoff, off the request path."""
    raw_log: bool = False
    """Log every /v1 request and response body in full (stream chunks included) to `raw_log_path`; secrets in
    headers are never written, and keys found in bodies are masked. For debugging: bodies hold user data.
    Turns the usage log on (the raw lines are written with the usage events)."""
    raw_log_path: str = ""
    """The raw log's JSONL file; default `<data_dir>/raw.jsonl`."""
    raw_log_max_bytes: FileSize = 100 * 1024 * 1024
    """Rotate the raw log before a write would take it past this size."""
    raw_log_backups: Retained = 3
    """Rotated raw log files kept."""
    compress_min_bytes: Retained = 0
    """gzip whole JSON answers of at least this many bytes for clients that accept it (`accept-encoding: gzip`);
    never streams, nor answers the upstream compressed already. 0 (the default): off."""
    audit_retention_days: Retained = 365
    """Audit trail entries (management actions, sign-ins) older than this many days are pruned, checked hourly;
    0 keeps them all."""

    @property
    def spill_file(self) -> str:
        """Where usage events go when the queue is full: `usage_spill_path`, else `<data_dir>/usage-spill.jsonl`."""
        return self.usage_spill_path or f"{self.data_dir}/usage-spill.jsonl"

    @property
    def store_spill_file(self) -> str:
        """Where usage batches the store could not take wait to be replayed into it (the spill file's name with
        `.store`: not mixed with the events other sinks spilled, which the store has)."""
        return f"{self.spill_file}.store"

    @property
    def raw_log_file(self) -> str:
        """The raw log: `raw_log_path`, else `<data_dir>/raw.jsonl`."""
        return self.raw_log_path or f"{self.data_dir}/raw.jsonl"


class CacheConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The `[cache]` table: the response cache (docs/cache.md). Off unless `ttl_s` is set here (or by
    `LLMGATE_CACHE_TTL_S`) or an alias has its own `cache`."""

    ttl_s: Seconds | None = None
    """How long a successful answer is served from the cache, for every alias without its own `cache`."""
    max_bytes: FileSize = 64 * 1024 * 1024
    """The in-process cache's size bound (answers' bytes); the least recently used go first. With Redis
    (`LLMGATE_REDIS_URL`), Redis's own `maxmemory` bounds it instead."""
    scope: Literal["project", "global"] = "project"
    """`project`: answers are shared only between the requests of one project (the master key's requests are one
    more); `global`: between every caller."""
    wait_s: Seconds = 30.0
    """How long identical requests wait for the one in flight to be answered before they go upstream
    themselves."""


class FileConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The whole TOML config file."""

    server: ServerConfig = ServerConfig()
    routing: RoutingConfig = RoutingConfig()
    cache: CacheConfig = CacheConfig()
    auth: AuthConfig = AuthConfig()
    providers: tuple[ProviderConfig, ...] = ()
    models: tuple[ModelConfig, ...] = ()
    prices: dict[ModelPattern, Price] = {}
    """Model name (a trailing `*` matches a prefix) → its price: `[prices."gpt-4o"]` (usage/prices.py)."""
    projects: dict[str, ProjectConfig] = {}
    """Project id (or name) → `[projects.<id>]` settings (per-end-user limits)."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Everything llmgate runs with, resolved: secrets read, defaults applied."""

    server: ServerConfig
    providers: tuple[ProviderConfig, ...]
    """Keys resolved: `api_keys` holds every key (secrets, no `env:`), `api_key` the first."""
    models: tuple[ModelConfig, ...] = ()
    routing: RoutingConfig = RoutingConfig()
    cache: CacheConfig = CacheConfig()
    auth: AuthConfig = AuthConfig()
    master_key: str | None = None
    """`LLMGATE_MASTER_KEY`: required as a bearer (or x-api-key) on every /v1 request when set."""
    config_path: str | None = None
    has_config_file: bool = False
    management_token: str | None = None
    """`LLMGATE_MANAGEMENT_TOKEN`: the bearer the /manage API requires; the API is disabled when unset."""
    secret_key: str | None = None
    """`LLMGATE_SECRET_KEY`: encrypts per-project upstream keys at rest; without it they cannot be stored."""
    database_url: DatabaseUrl | None = None
    """`LLMGATE_DATABASE_URL`: postgresql://... to share projects and tokens between instances (else SQLite)."""
    redis_url: RedisUrl | None = None
    """`LLMGATE_REDIS_URL`: redis://... to share rate limits and revocations between instances."""
    prices: dict[str, Price] = {}
    """Per-model prices from the config file, for the usage events' `cost`."""
    projects: dict[str, ProjectConfig] = {}
    """`[projects.<id>]` from the config file."""
    usage_http_token: str | None = None
    """`LLMGATE_USAGE_HTTP_TOKEN`: sent as `Authorization: Bearer ...` with the HTTP usage sink's POSTs."""
    metrics_token: str | None = None
    """`LLMGATE_METRICS_TOKEN`: when set, `GET /metrics` requires it as `Authorization: Bearer ...`."""
    admin_user: str | None = None
    """`LLMGATE_ADMIN_USER`: with `admin_password`, the admin UI (/ui) also accepts HTTP basic auth."""
    admin_password: str | None = None
    """`LLMGATE_ADMIN_PASSWORD`: the admin UI's basic-auth password (with `admin_user`)."""
    tracing: TracingConfig | None = None
    """From the standard OTEL_* variables: traces exported over OTLP/HTTP when an endpoint is set."""

    @property
    def caches(self) -> bool:
        """Whether any answer is cached: `[cache] ttl_s` is set, or an alias has its own `cache`."""
        return self.cache.ttl_s is not None or any(model.cache is not None for model in self.models)
