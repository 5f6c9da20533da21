"""Settings: environment variables and an optional TOML file, decoded into the Structs of config_schema.py.

Precedence: command-line flags > environment > config file > defaults. The environment's values are merged over
the file's and the whole is checked and decoded once, so both are held to the same types and ranges. A wrong
config stops start-up with a `ConfigError` that lists every problem found, one a line, each saying where it is
(`llmgate.toml:14:` or the environment variable), the key and what was expected.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from llmgate.config_access import AuthConfig, JwtConfig
from llmgate.config_checks import check_settings
from llmgate.config_decode import BAD, Problem, check, format_path, from_env, shown
from llmgate.config_schema import (
    CacheConfig,
    DeploymentConfig,
    FileConfig,
    HedgeConfig,
    ModelConfig,
    ProviderConfig,
    RoutingConfig,
    ServerConfig,
    Settings,
    Timeouts,
)
from llmgate.config_types import (
    DEFAULT_ANTHROPIC_BASE_URL,
    DEFAULT_BASE_URLS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_OPENAI_BASE_URL,
    LOG_LEVELS,
    Capability,
    ConfigError,
    ProviderKind,
)
from llmgate.observe.tracing import tracing_from_env
from llmgate.providers.presets import PRESETS
from llmgate.toml_lines import KeyPath, key_lines, line_of

__all__ = [
    "CACHE_ENV", "DEFAULT_ANTHROPIC_BASE_URL", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_OPENAI_BASE_URL", "LOG_LEVELS",
    "OTHER_ENV", "SERVER_ENV", "AuthConfig", "CacheConfig", "Capability", "ConfigError", "DeploymentConfig",
    "FileConfig", "HedgeConfig", "JwtConfig", "ModelConfig", "ProviderConfig", "ProviderKind", "RoutingConfig",
    "ServerConfig", "Settings",
    "Timeouts", "is_loopback", "load_settings",
]

# Environment variable → key in [server]; its type is the field's. One table, so .env.example can be checked.
SERVER_ENV: dict[str, str] = {
    "LLMGATE_HOST": "host",
    "LLMGATE_PORT": "port",
    "LLMGATE_WORKERS": "workers",
    "LLMGATE_SINGLE_PROCESS": "single_process",
    "LLMGATE_MAX_CONNECTIONS": "max_connections",
    "LLMGATE_BACKLOG": "backlog",
    "LLMGATE_MAX_BODY_BYTES": "max_body_bytes",
    "LLMGATE_BODY_TIMEOUT_S": "body_timeout_s",
    "LLMGATE_MAX_HEADER_BYTES": "max_header_bytes",
    "LLMGATE_AUTH_FAIL_BURST": "auth_fail_burst",
    "LLMGATE_AUTH_FAIL_PER_S": "auth_fail_per_s",
    "LLMGATE_CORS_ORIGINS": "cors_origins",
    "LLMGATE_MODELS_CACHE_TTL_S": "models_cache_ttl_s",
    "LLMGATE_STREAM_KEEPALIVE_S": "stream_keepalive_s",
    "LLMGATE_LOG_LEVEL": "log_level",
    "LLMGATE_LOG_JSON": "log_json",
    "LLMGATE_SHED_LAG_MS": "shed_lag_ms",
    "LLMGATE_DATA_DIR": "data_dir",
    "LLMGATE_TOKEN_CACHE_TTL_S": "token_cache_ttl_s",
    "LLMGATE_TOKEN_NEGATIVE_TTL_S": "token_negative_ttl_s",
    "LLMGATE_USAGE_FLUSH_S": "usage_flush_s",
    "LLMGATE_USAGE_LOG": "usage_log",
    "LLMGATE_METER_EVERY_TOKEN": "meter_every_token",
    "LLMGATE_USAGE_QUEUE_SIZE": "usage_queue_size",
    "LLMGATE_USAGE_BATCH_SIZE": "usage_batch_size",
    "LLMGATE_USAGE_SPILL_PATH": "usage_spill_path",
    "LLMGATE_USAGE_STORE": "usage_store",
    "LLMGATE_USAGE_JSONL": "usage_jsonl_path",
    "LLMGATE_USAGE_JSONL_MAX_BYTES": "usage_jsonl_max_bytes",
    "LLMGATE_USAGE_JSONL_BACKUPS": "usage_jsonl_backups",
    "LLMGATE_USAGE_JSONL_FSYNC": "usage_jsonl_fsync",
    "LLMGATE_USAGE_HTTP_URL": "usage_http_url",
    "LLMGATE_END_USER_HEADER": "end_user_header",
    "LLMGATE_ALERT_WEBHOOK_URL": "alert_webhook_url",
    "LLMGATE_USAGE_HTTP_RETRIES": "usage_http_retries",
    "LLMGATE_USAGE_HTTP_TIMEOUT_S": "usage_http_timeout_s",
    "LLMGATE_RAW_LOG": "raw_log",
    "LLMGATE_RAW_LOG_PATH": "raw_log_path",
    "LLMGATE_RAW_LOG_MAX_BYTES": "raw_log_max_bytes",
    "LLMGATE_RAW_LOG_BACKUPS": "raw_log_backups",
    "LLMGATE_COMPRESS_MIN_BYTES": "compress_min_bytes",
    "LLMGATE_AUDIT_RETENTION_DAYS": "audit_retention_days",
}
# Environment variable → key in [cache].
CACHE_ENV: dict[str, str] = {
    "LLMGATE_CACHE_TTL_S": "ttl_s",
}
# Environment variable → the Settings field it fills as it is (secrets and store URLs: not in the file).
SETTINGS_ENV: dict[str, str] = {
    "LLMGATE_MASTER_KEY": "master_key",
    "LLMGATE_MANAGEMENT_TOKEN": "management_token",
    "LLMGATE_SECRET_KEY": "secret_key",
    "LLMGATE_DATABASE_URL": "database_url",
    "LLMGATE_REDIS_URL": "redis_url",
    "LLMGATE_USAGE_HTTP_TOKEN": "usage_http_token",
    "LLMGATE_METRICS_TOKEN": "metrics_token",
    "LLMGATE_ADMIN_USER": "admin_user",
    "LLMGATE_ADMIN_PASSWORD": "admin_password",
}
OTHER_ENV = (*SETTINGS_ENV, *CACHE_ENV, "LLMGATE_CONFIG", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY",
             "ANTHROPIC_BASE_URL", "LLMGATE_URL")  # LLMGATE_URL: read by the `llmgate project|token` commands only

_SERVER_TYPES = {field.name: field.type for field in msgspec.structs.fields(ServerConfig)}
_CACHE_TYPES = {field.name: field.type for field in msgspec.structs.fields(CacheConfig)}
_TABLE_ENV = (("server", SERVER_ENV, _SERVER_TYPES), ("cache", CACHE_ENV, _CACHE_TYPES))
"""The tables the environment's values go into: the table, variable → key, key → type."""
_SETTINGS_TYPES = {field.name: field.type for field in msgspec.structs.fields(Settings)}


def load_settings(env: Mapping[str, str] | None = None, config_path: str | None = None) -> Settings:
    """Resolve the settings from `env` (default: os.environ) and the TOML file at `config_path` or LLMGATE_CONFIG;
    ConfigError listing every problem found."""
    env = os.environ if env is None else env
    path = config_path or env.get("LLMGATE_CONFIG") or None
    text = _read_text(path) if path else ""
    sources = _Sources(path, text)
    problems: list[Problem] = []
    data = _with_env(_parse_toml(path, text) if path else {}, env, sources, problems)
    file_config = _decode(data, problems)
    secrets = _secrets(env, sources, problems)
    if file_config is None:  # a part that cannot be left out is wrong: nothing to check references on
        raise sources.error(problems)
    server = file_config.server
    if server.usage_jsonl_path or server.usage_http_url or server.raw_log:  # a sink means usage is logged
        server = msgspec.structs.replace(server, usage_log=True)
    tracing = None
    try:
        tracing = tracing_from_env(env)
    except ValueError as exc:
        problems.append(Problem((), str(exc)))
    settings = Settings(
        server=server,
        providers=tuple(_resolve_provider(p, i, env, problems) for i, p in enumerate(file_config.providers)),
        models=file_config.models,
        routing=file_config.routing,
        cache=file_config.cache,
        auth=file_config.auth,
        prices=file_config.prices,
        projects=file_config.projects,
        config_path=path,
        has_config_file=path is not None,
        tracing=tracing,
        **secrets,
    )
    found = {problem.path for problem in problems}  # a value already reported as wrong is not also "missing"
    problems += [problem for problem in check_settings(settings) if problem.path not in found]
    if problems:
        raise sources.error(problems)
    return settings


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path!r} cannot be read: {exc.strerror}") from None


def _parse_toml(path: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path!r} is not valid TOML: {exc}") from None


def _with_env(data: dict[str, Any], env: Mapping[str, str], sources: _Sources,
              problems: list[Problem]) -> dict[str, Any]:
    """The file's data with the environment's [server] and [cache] values over it, and, when the file declares
    no providers, the ones the SDKs' own variables describe."""
    for name, variables, types in _TABLE_ENV:
        table = data.get(name, {})
        if not isinstance(table, dict):  # the check says the file's table is not a table
            continue
        table = dict(table)
        for var, key in variables.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            sources.env[(name, key)] = _Env(var, raw)
            table.pop(key, None)
            try:
                table[key] = from_env(raw, types[key])
            except ValueError as exc:
                problems.append(Problem((name, key), str(exc), shown(raw)))
        data = {**data, name: table}
    if not data.get("providers"):
        data = {**data, "providers": _providers_from_sdk_env(env, sources)}
    return data


def _decode(data: dict[str, Any], problems: list[Problem]) -> FileConfig | None:
    """Every field checked against its type, then one decode of what can be; None when nothing can."""
    checked = check(data, FileConfig, (), problems)
    if checked is BAD:
        return None
    try:
        return msgspec.convert(checked, FileConfig)
    except msgspec.ValidationError as exc:  # what the field-by-field check let through: reported as msgspec says
        problems.append(Problem((), str(exc)))
        return None


def _secrets(env: Mapping[str, str], sources: _Sources, problems: list[Problem]) -> dict[str, str | None]:
    """The Settings fields read from the environment as they are; the store URLs checked for their scheme."""
    values: dict[str, str | None] = {}
    for var, field in SETTINGS_ENV.items():
        value = values[field] = env.get(var) or None
        if value is not None:
            sources.env[(field,)] = _Env(var, value)
            check(value, _SETTINGS_TYPES[field], (field,), problems)
    return values


def _providers_from_sdk_env(env: Mapping[str, str], sources: _Sources) -> list[dict[str, Any]]:
    """No providers in a file: the SDKs' own variables. OpenAI passes every model through; Anthropic (when
    ANTHROPIC_API_KEY or ANTHROPIC_BASE_URL is set) serves the `claude-*` names."""
    openai: dict[str, Any] = {"name": "openai", "base_url": env.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL,
              "api_key": env.get("OPENAI_API_KEY", "")}
    providers = [openai]
    if env.get("ANTHROPIC_API_KEY") or env.get("ANTHROPIC_BASE_URL"):
        providers.insert(0, {"name": "anthropic", "kind": "anthropic", "models": ["claude-*"],
                             "base_url": env.get("ANTHROPIC_BASE_URL") or DEFAULT_ANTHROPIC_BASE_URL,
                             "api_key": env.get("ANTHROPIC_API_KEY", "")})
    for i, provider in enumerate(providers):
        var = "ANTHROPIC_BASE_URL" if provider["name"] == "anthropic" else "OPENAI_BASE_URL"
        if env.get(var):
            sources.env[("providers", i, "base_url")] = _Env(var, env[var])
    return providers


def _resolve_key(key: str, path: KeyPath, env: Mapping[str, str], problems: list[Problem]) -> str:
    if not key.startswith("env:"):
        return key
    var = key[4:]
    if not var or var not in env:
        problems.append(Problem(path, f"refers to environment variable {var!r}, which is not set"))
        return ""
    return env[var]


def _resolve_provider(provider: ProviderConfig, index: int, env: Mapping[str, str],
                      problems: list[Problem]) -> ProviderConfig:
    """Read `env:VAR` keys into `api_keys` (all) and `api_key` (the first); normalise the base URL."""
    where: KeyPath = ("providers", index)
    keys = [_resolve_key(provider.api_key, (*where, "api_key"), env, problems)] if provider.api_key else []
    keys += [_resolve_key(k, (*where, "api_keys", i), env, problems) for i, k in enumerate(provider.api_keys)]
    keys = [k for k in dict.fromkeys(keys) if k]
    base_url = provider.base_url or _default_base_url(provider)
    credentials = provider.credentials_file
    if credentials:
        credentials = _resolve_key(credentials, (*where, "credentials_file"), env, problems)
    return msgspec.structs.replace(provider, api_key=keys[0] if keys else "", api_keys=tuple(keys),
                                   base_url=base_url.rstrip("/"), credentials_file=credentials)


def _default_base_url(provider: ProviderConfig) -> str:
    """The kind's own base URL when the config gives none ("" for a kind without one: config_checks says so)."""
    if provider.kind == "bedrock":  # without a region: config_checks says so
        return f"https://bedrock-runtime.{provider.region}.amazonaws.com" if provider.region else ""
    preset = PRESETS.get(provider.kind)
    if preset is not None:
        return preset.base_url
    base_url = DEFAULT_BASE_URLS.get(provider.kind, "")
    if "{location}" in base_url:  # Vertex AI's global endpoint has no region in its host
        base_url = base_url.replace("{location}-", "" if provider.location == "global" else f"{provider.location}-")
    return base_url


class _Env(NamedTuple):
    var: str
    raw: str


class _Sources:
    """Where each value came from, to say where a problem is: the file's line, or the environment variable."""

    def __init__(self, path: str | None, text: str) -> None:
        self.path = path
        self.text = text
        self.env: dict[KeyPath, _Env] = {}
        self._lines: dict[KeyPath, int] | None = None

    def error(self, problems: list[Problem]) -> ConfigError:
        """One ConfigError with a line per problem: the file's in the file's order, then the rest as found."""
        located = [(self._line(p), self.describe(p)) for p in problems]
        located.sort(key=lambda item: item[0] if item[0] is not None else float("inf"))
        return ConfigError(*dict.fromkeys(text for _, text in located))

    def describe(self, problem: Problem) -> str:
        """`llmgate.toml:14: providers[0].timeouts.idle_s: expected a number, got "10s"`, or for a value from the
        environment `LLMGATE_PORT="abc": server.port: expected an integer`."""
        key = format_path(problem.path)
        env = self._env_of(problem.path)
        if env is not None:
            where = f"{env.var}={shown(env.raw)}" if problem.got is not None else env.var  # got: not secret
            return ": ".join(part for part in (where, key if len(problem.path) > 1 else "", problem.message) if part)
        message = problem.message if problem.got is None else f"{problem.message}, got {problem.got}"
        line = self._line(problem)
        where = (f"{self.path}:{line}" if line is not None else self.path) if self.path else ""
        return ": ".join(part for part in (where, key, message) if part)

    def _env_of(self, path: KeyPath) -> _Env | None:
        """The variable that set `path` or a table around it (the environment wins over the file)."""
        return next((self.env[path[:end]] for end in range(len(path), 0, -1) if path[:end] in self.env), None)

    def _line(self, problem: Problem) -> int | None:
        if not self.text or self._env_of(problem.path) is not None:
            return None
        if self._lines is None:
            self._lines = key_lines(self.text)
        return line_of(self._lines, problem.path)


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
