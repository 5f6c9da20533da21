"""Config decoding: environment, TOML file, and errors that name the key."""

from pathlib import Path

import pytest

from llmgate.config import (
    DEFAULT_OPENAI_BASE_URL,
    ConfigError,
    is_loopback,
    load_settings,
)
from llmgate.config_checks import parse_route


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "llmgate.toml"
    path.write_text(text)
    return str(path)


def test_no_config_file_serves_openai_from_the_sdk_variables() -> None:
    settings = load_settings({"OPENAI_API_KEY": "sk-abc", "OPENAI_BASE_URL": "http://up:9/v1/"})
    (provider,) = settings.providers
    assert (provider.name, provider.base_url, provider.api_key, provider.models) == (
        "openai", "http://up:9/v1", "sk-abc", ())
    assert not settings.has_config_file
    assert settings.master_key is None


def test_default_base_url_is_openai() -> None:
    assert load_settings({}).providers[0].base_url == DEFAULT_OPENAI_BASE_URL


def test_server_env_overrides() -> None:
    settings = load_settings({"LLMGATE_PORT": "9000", "LLMGATE_HOST": "0.0.0.0", "LLMGATE_WORKERS": "3",
                              "LLMGATE_CORS_ORIGINS": "https://a.example, https://b.example",
                              "LLMGATE_MASTER_KEY": "sk-master", "LLMGATE_MAX_BODY_BYTES": "2048"})
    assert (settings.server.port, settings.server.host, settings.server.workers) == (9000, "0.0.0.0", 3)
    assert settings.server.cors_origins == ("https://a.example", "https://b.example")
    assert settings.server.max_body_bytes == 2048
    assert settings.master_key == "sk-master"


def test_single_process_serves_one_worker() -> None:
    from llmgate.cli.serve import serves_in_process

    assert serves_in_process(load_settings({}))  # the default for one worker
    assert serves_in_process(load_settings({"LLMGATE_SINGLE_PROCESS": "1"}))
    assert not serves_in_process(load_settings({"LLMGATE_SINGLE_PROCESS": "0"}))  # granian's supervisor
    assert not serves_in_process(load_settings({"LLMGATE_WORKERS": "2"}))
    with pytest.raises(ConfigError, match=r"server.single_process: serves one worker in this process; got workers = 2"):
        load_settings({"LLMGATE_SINGLE_PROCESS": "1", "LLMGATE_WORKERS": "2"})


def test_bad_env_number_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r'LLMGATE_PORT="eighty": server.port: expected an integer$'):
        load_settings({"LLMGATE_PORT": "eighty"})


def test_file_with_several_providers(tmp_path: Path) -> None:
    path = write(tmp_path, """
[server]
port = 8001
extra_routes = ["POST /v1/moderations"]

[[providers]]
name = "a"
base_url = "https://a.example/v1"
api_key = "env:A_KEY"
models = ["gpt-4o"]
timeouts = { connect_s = 2, first_byte_s = 30, idle_s = 5 }

[[providers]]
name = "local"
base_url = "http://127.0.0.1:11434/v1"
""")
    settings = load_settings({"A_KEY": "sk-from-env"}, path)
    a, local = settings.providers
    assert a.api_key == "sk-from-env" and a.models == ("gpt-4o",)
    assert (a.timeouts.connect_s, a.timeouts.first_byte_s, a.timeouts.idle_s) == (2, 30, 5)
    assert local.api_key == "" and local.models == ()
    assert settings.server.port == 8001 and settings.has_config_file


def test_config_path_from_env(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 8555\n')
    assert load_settings({"LLMGATE_CONFIG": path}).server.port == 8555


def test_env_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 8555\n')
    assert load_settings({"LLMGATE_PORT": "8666"}, path).server.port == 8666


@pytest.mark.parametrize(("toml", "expected"), [
    ('[[providers]]\nname = "a"\nbase_url = 5\n', r"providers\[0\]\.base_url: expected a string, got 5"),
    ('[[providers]]\nbase_url = "http://x"\n', r"providers\[0\]\.name: required, missing"),
    ('[server]\nprot = 1\n', r'server\.prot: unknown key \(did you mean "port"\?\)'),
    ('[server]\nport = "x"\n', r'server\.port: expected an integer, got "x"'),
    ('[[providers]]\nname = "a"\nbase_url = "ftp://x"\n', r"providers\[0\]\.base_url: expected an http"),
    ('[[providers]]\nname = "a"\nbase_url = "http://x"\n[[providers]]\nname = "a"\nbase_url = "http://y"\n',
     r"providers\[1\]\.name: 'a' is used by another provider"),
    ('[[providers]]\nname = "a"\nbase_url = "http://x"\napi_key = "env:NOPE"\n',
     r"providers\[0\]\.api_key: refers to environment variable 'NOPE', which is not set"),
    ('[[providers]]\nname = "a"\nbase_url = "http://x"\ntimeouts = { idle_s = 0 }\n',
     r"providers\[0\]\.timeouts\.idle_s: expected a number of seconds > 0"),
    ('[server]\nport = 70000\n', r"server\.port: expected an integer from 1 to 65535, got 70000"),
    ('[server]\nextra_routes = ["moderations"]\n', r"server\.extra_routes\[0\]: expected \"METHOD /v1/path\""),
    ('[server]\nlog_level = "LOUD"\n', r"server\.log_level: expected one of"),
    ("[server\n", r"is not valid TOML"),
])
def test_wrong_config_names_the_key(tmp_path: Path, toml: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings({}, write(tmp_path, toml))


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, str(tmp_path / "nope.toml"))


def test_parse_route() -> None:
    assert parse_route("post /v1/moderations/", "x") == ("POST", "/moderations")


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.5.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("10.0.0.1", False), ("example.com", False), ("::", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


ROUTED = """
[routing]
max_attempts = 3

[[providers]]
name = "oai"
base_url = "https://api.openai.com/v1/"
api_key = "env:K1"
api_keys = ["env:K2", "sk-literal", "env:K1"]

[[providers]]
name = "az"
kind = "azure"
base_url = "https://r.openai.azure.com"
api_version = "2024-06-01"
capabilities = ["chat", "embeddings"]

[[models]]
name = "gpt-4o"
fallbacks = ["mini"]
hedge = { after_ms = 500 }
deployments = [{ provider = "oai", weight = 2, rpm = 100 }, { provider = "az", model = "my-dep" }]

[[models]]
name = "mini"
deployments = [{ provider = "oai", model = "gpt-4o-mini" }]
"""


def test_aliases_keys_and_kinds(tmp_path: Path) -> None:
    settings = load_settings({"K1": "sk-one", "K2": "sk-two"}, write(tmp_path, ROUTED))
    oai, az = settings.providers
    assert oai.api_keys == ("sk-one", "sk-two", "sk-literal") and oai.api_key == "sk-one"  # each key once
    assert oai.base_url == "https://api.openai.com/v1"
    assert (az.kind, az.api_version, az.capabilities) == ("azure", "2024-06-01", ("chat", "embeddings"))
    gpt4o, _ = settings.models
    assert [(d.provider, d.model, d.weight, d.rpm) for d in gpt4o.deployments] == [
        ("oai", "", 2, 100), ("az", "my-dep", 1, None)]
    assert gpt4o.fallbacks == ("mini",) and gpt4o.hedge is not None and gpt4o.hedge.after_ms == 500
    assert settings.routing.max_attempts == 3


@pytest.mark.parametrize(("change", "expected"), [
    (('provider = "az", model', 'provider = "nope", model'), r"models\[0\]\.deployments\[1\]\.provider: no provider"),
    (('fallbacks = ["mini"]', 'fallbacks = ["maxi"]'), r"models\[0\]\.fallbacks\[0\]: 'maxi' is not a model alias"),
    (("weight = 2", "weight = 0"), r"models\[0\]\.deployments\[0\]\.weight: expected a number > 0"),
    (('kind = "azure"', 'kind = "watsonx"'),
     r'providers\[1\]\.kind: expected one of "openai", "azure", "anthropic", "gemini", "vertex", .*, got "watsonx"'),
    (('"chat", "embeddings"', '"chat", "video"'), r"providers\[1\]\.capabilities\[1\]"),
    (('model = "gpt-4o-mini" }]', 'model = "gpt-4o-mini" }]\n[[models]]\nname = "mini"\n'
      'deployments = [{ provider = "az" }]'),
     r"models\[2\]\.name: 'mini' is declared twice"),
    (("max_attempts = 3", "max_attempts = 0"), r"routing\.max_attempts: expected an integer >= 1"),
    (('"env:K2"', '"env:MISSING"'), r"providers\[0\]\.api_keys\[0\]: refers to environment variable 'MISSING'"),
])
def test_routing_config_errors_name_the_key(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings({"K1": "sk-one", "K2": "sk-two"}, write(tmp_path, ROUTED.replace(*change)))


def test_anthropic_sdk_variables_add_a_claude_provider() -> None:
    settings = load_settings({"ANTHROPIC_API_KEY": "sk-ant-1", "OPENAI_API_KEY": "sk-oai"})
    anthropic, openai = settings.providers
    assert (anthropic.kind, anthropic.base_url, anthropic.api_key, anthropic.models) == (
        "anthropic", "https://api.anthropic.com", "sk-ant-1", ("claude-*",))
    assert openai.name == "openai" and openai.models == ()
    assert len(load_settings({"OPENAI_API_KEY": "sk-oai"}).providers) == 1


def test_keepalive_interval_from_env() -> None:
    assert load_settings({"LLMGATE_STREAM_KEEPALIVE_S": "2.5"}).server.stream_keepalive_s == 2.5
    with pytest.raises(ConfigError, match="stream_keepalive_s"):
        load_settings({"LLMGATE_STREAM_KEEPALIVE_S": "0"})


def test_token_and_store_settings() -> None:
    settings = load_settings({"LLMGATE_MANAGEMENT_TOKEN": "mt", "LLMGATE_SECRET_KEY": "sk",
                              "LLMGATE_DATABASE_URL": "postgresql://u@h/db", "LLMGATE_REDIS_URL": "redis://h:6379/0",
                              "LLMGATE_DATA_DIR": "/var/lib/llmgate", "LLMGATE_TOKEN_CACHE_TTL_S": "2.5"})
    assert (settings.management_token, settings.secret_key, settings.database_url, settings.redis_url) == (
        "mt", "sk", "postgresql://u@h/db", "redis://h:6379/0")
    assert (settings.server.data_dir, settings.server.token_cache_ttl_s) == ("/var/lib/llmgate", 2.5)


@pytest.mark.parametrize(("env", "names"), [
    ({"LLMGATE_DATABASE_URL": "mysql://h/db"}, "LLMGATE_DATABASE_URL"),
    ({"LLMGATE_REDIS_URL": "http://h"}, "LLMGATE_REDIS_URL"),
    ({"LLMGATE_TOKEN_CACHE_TTL_S": "0"}, "token_cache_ttl_s"),
    ({"LLMGATE_USAGE_FLUSH_S": "-1"}, "usage_flush_s"),
])
def test_bad_token_and_store_settings_name_the_key(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        load_settings(env)


def test_the_cache_is_off_unless_a_ttl_is_set() -> None:
    assert not load_settings({}).caches
    settings = load_settings({"LLMGATE_CACHE_TTL_S": "600"})
    assert settings.caches and settings.cache.ttl_s == 600 and settings.cache.scope == "project"


def test_an_alias_cache_turns_the_cache_on(tmp_path: Path) -> None:
    path = write(tmp_path, '[[providers]]\nname = "p"\nbase_url = "http://p/v1"\n\n[[models]]\nname = "m"\n'
                           'cache = { ttl_s = 60 }\ndeployments = [{ provider = "p" }]\n')
    settings = load_settings({}, path)
    assert settings.caches and settings.cache.ttl_s is None and settings.models[0].cache is not None


@pytest.mark.parametrize(("env", "toml", "expected"), [
    ({"LLMGATE_CACHE_TTL_S": "soon"}, "", r'LLMGATE_CACHE_TTL_S="soon": cache.ttl_s: expected a number'),
    ({}, '[cache]\nscope = "team"\n', r'llmgate.toml:2: cache.scope: expected one of "project", "global"'),
    ({}, "[cache]\nttl_s = 0\n", r"cache.ttl_s: expected a number of seconds > 0"),
    ({}, "[cache]\nttl = 5\n", r'cache.ttl: unknown key \(did you mean "ttl_s"\?\)'),
])
def test_cache_settings_errors_name_the_key(tmp_path: Path, env: dict[str, str], toml: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(env, write(tmp_path, toml) if toml else None)


def test_google_kinds_default_their_base_url_and_vertex_needs_project_and_location(tmp_path: Path) -> None:
    path = tmp_path / "llmgate.toml"
    path.write_text('[[providers]]\nname = "g"\nkind = "gemini"\napi_key = "env:GEMINI_API_KEY"\n'
                    '[[providers]]\nname = "v"\nkind = "vertex"\nproject = "p"\nlocation = "europe-west4"\n'
                    'credentials_file = "env:GOOGLE_APPLICATION_CREDENTIALS"\n'
                    '[[providers]]\nname = "global"\nkind = "vertex"\nproject = "p"\nlocation = "global"\n')
    gemini, vertex, world = load_settings({"GEMINI_API_KEY": "AIza", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json"},
                                          str(path)).providers
    assert (gemini.base_url, gemini.api_key) == ("https://generativelanguage.googleapis.com", "AIza")
    assert (vertex.base_url, vertex.credentials_file) == ("https://europe-west4-aiplatform.googleapis.com", "/k.json")
    assert world.base_url == "https://aiplatform.googleapis.com" and world.credentials_file == ""
    path.write_text('[[providers]]\nname = "v"\nkind = "vertex"\ncredentials_file = "env:NOPE"\n'
                    '[[providers]]\nname = "o"\nkind = "openai"\n')
    with pytest.raises(ConfigError) as error:
        load_settings({}, str(path))
    assert error.value.problems == (
        f"{path}:1: providers[0].project: is required for kind 'vertex'",
        f"{path}:1: providers[0].location: is required for kind 'vertex'",
        f"{path}:4: providers[0].credentials_file: refers to environment variable 'NOPE', which is not set",
        f"{path}:5: providers[1].base_url: is required for kind 'openai'",
    )
