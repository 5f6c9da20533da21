"""Config errors: every problem at once, each at its line in the file or naming its environment variable; the
environment held to the same types and ranges as the file."""

import argparse
import re
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmgate.config import ConfigError, load_settings
from llmgate.config_checks import parse_route
from llmgate.config_types import Route
from tests.docs import toml_examples


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "llmgate.toml"
    path.write_text(text)
    return str(path)


def problems(env: dict[str, str], path: str | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env, path)
    assert list(caught.value.problems) == str(caught.value).splitlines()
    return list(caught.value.problems)


THREE_MISTAKES = """\
[server]
port = 70000

[[providers]]
name = "a"
base_url = "https://a.example/v1"
timeouts = { connect_s = 2, idle_s = "10s" }

[[models]]
name = "m"
deployments = [
  { provider = "a" },
  { provider = "a", weight = 0 },
]
"""


def test_every_mistake_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, THREE_MISTAKES)
    assert problems({}, path) == [
        f"{path}:2: server.port: expected an integer from 1 to 65535, got 70000",
        f'{path}:7: providers[0].timeouts.idle_s: expected a number, got "10s"',
        f"{path}:13: models[0].deployments[1].weight: expected a number > 0, got 0",
    ]


def test_type_and_reference_mistakes_come_together(tmp_path: Path) -> None:
    path = write(tmp_path, THREE_MISTAKES.replace('{ provider = "a" }', '{ provider = "b" }') +
                 'fallbacks = ["nope"]\n[[providers]]\nname = "a"\nbase_url = "http://x"\napi_key = "env:NOPE"\n')
    assert problems({}, path) == [
        f"{path}:2: server.port: expected an integer from 1 to 65535, got 70000",
        f'{path}:7: providers[0].timeouts.idle_s: expected a number, got "10s"',
        f"{path}:12: models[0].deployments[0].provider: no provider is named 'b'",
        f"{path}:13: models[0].deployments[1].weight: expected a number > 0, got 0",
        f"{path}:15: models[0].fallbacks[0]: 'nope' is not a model alias",
        f"{path}:17: providers[1].name: 'a' is used by another provider",
        f"{path}:19: providers[1].api_key: refers to environment variable 'NOPE', which is not set",
    ]


def test_arrays_of_tables_dotted_keys_and_missing_keys(tmp_path: Path) -> None:
    path = write(tmp_path, """\
[[providers]]
name = "a"
base_url = "http://a"

[[providers]]
base_url = "http://b"
timeouts.idel_s = 3

[[models]]
name = "m"
[[models.deployments]]
provider = "a"
[[models.deployments]]
provider = "a"
rpm = 0
[models.hedge]
max_ratio = 1.5
""")
    assert problems({}, path) == [
        f"{path}:5: providers[1].name: required, missing",  # no such line: its [[providers]] header
        f'{path}:7: providers[1].timeouts.idel_s: unknown key (did you mean "idle_s"?)',
        f"{path}:15: models[0].deployments[1].rpm: expected an integer >= 1, got 0",
        f"{path}:17: models[0].hedge.max_ratio: expected a number in (0, 1], got 1.5",
    ]


@pytest.mark.parametrize(("env", "expected"), [
    ({"LLMGATE_USAGE_FLUSH_S": "10s"}, 'LLMGATE_USAGE_FLUSH_S="10s": server.usage_flush_s: expected a number'),
    ({"LLMGATE_PORT": "0"}, 'LLMGATE_PORT="0": server.port: expected an integer from 1 to 65535'),
    ({"LLMGATE_WORKERS": "2.5"}, 'LLMGATE_WORKERS="2.5": server.workers: expected an integer'),
    ({"LLMGATE_BACKLOG": "100"}, 'LLMGATE_BACKLOG="100": server.backlog: expected an integer >= 128'),
    ({"LLMGATE_LOG_LEVEL": "LOUD"}, 'LLMGATE_LOG_LEVEL="LOUD": server.log_level: expected one of TRACE, DEBUG'),
    ({"LLMGATE_LOG_JSON": "maybe"},
     'LLMGATE_LOG_JSON="maybe": server.log_json: expected 1/true/yes/on or 0/false/no/off'),
    ({"LLMGATE_USAGE_HTTP_URL": "collector:9000"},
     'LLMGATE_USAGE_HTTP_URL="collector:9000": server.usage_http_url: expected an http:// or https:// URL'),
    ({"LLMGATE_USAGE_JSONL_BACKUPS": "-1"},
     'LLMGATE_USAGE_JSONL_BACKUPS="-1": server.usage_jsonl_backups: expected an integer >= 0'),
    ({"OPENAI_BASE_URL": "api.openai.com"},
     'OPENAI_BASE_URL="api.openai.com": providers[0].base_url: expected an http:// or https:// URL'),
])
def test_environment_errors_name_the_variable(env: dict[str, str], expected: str) -> None:
    (problem,) = problems(env)
    assert problem.startswith(expected)


def test_environment_and_file_errors_together(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nworkers = 0\nport = "x"\n')
    assert problems({"LLMGATE_PORT": "8001", "LLMGATE_STREAM_KEEPALIVE_S": "-1"}, path) == [
        f"{path}:2: server.workers: expected an integer >= 1, got 0",  # the file's port is overridden: not checked
        'LLMGATE_STREAM_KEEPALIVE_S="-1": server.stream_keepalive_s: expected a number of seconds > 0',
    ]


def test_store_urls_are_checked_without_being_shown() -> None:
    (problem,) = problems({"LLMGATE_DATABASE_URL": "mysql://user:hunter2@db/llmgate"})
    assert problem == "LLMGATE_DATABASE_URL: expected postgresql://... or sqlite:///path"


def test_documented_environment_values_are_accepted() -> None:
    settings = load_settings({"LLMGATE_LOG_JSON": "yes", "LLMGATE_USAGE_STORE": "off", "LLMGATE_RAW_LOG": "ON",
                              "LLMGATE_SINGLE_PROCESS": "true", "LLMGATE_PORT": " 8080 ", "LLMGATE_LOG_LEVEL": "debug",
                              "LLMGATE_SHED_LAG_MS": "0", "LLMGATE_CORS_ORIGINS": "https://a, ,https://b"})
    server = settings.server
    assert (server.log_json, server.usage_store, server.raw_log, server.single_process) == (True, False, True, True)
    assert (server.port, server.log_level, server.cors_origins) == (8080, "debug", ("https://a", "https://b"))


EXAMPLES = toml_examples()


def test_the_docs_have_config_examples() -> None:
    assert len(EXAMPLES) >= 3, EXAMPLES


@pytest.mark.parametrize("text", [text for _, text in EXAMPLES], ids=[where for where, _ in EXAMPLES])
def test_documented_config_examples_load(tmp_path: Path, text: str) -> None:
    env = {name: "sk-test" for name in re.findall(r'"env:(\w+)"', text)}
    settings = load_settings(env, write(tmp_path, text))
    assert settings.has_config_file


def test_serve_prints_every_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from llmgate.cli.serve import run_serve

    path = write(tmp_path, THREE_MISTAKES)
    monkeypatch.setenv("LLMGATE_CONFIG", path)
    args = argparse.Namespace(host=None, port=None, workers=None, config=None, single_process=None)
    assert run_serve(args) == 2
    assert capsys.readouterr().err == (
        "llmgate: configuration errors:\n"
        f"  {path}:2: server.port: expected an integer from 1 to 65535, got 70000\n"
        f'  {path}:7: providers[0].timeouts.idle_s: expected a number, got "10s"\n'
        f"  {path}:13: models[0].deployments[1].weight: expected a number > 0, got 0\n"
    )


_ROUTE_PARTS = st.sampled_from(["", " ", "  ", "\t", "POST", "post", "Get", "DELETE", "FETCH", "/v1/", "/v1",
                                "/v2/x", "moderations", "/v1/files/", "x"])


@given(st.lists(_ROUTE_PARTS, max_size=5).map("".join))
def test_the_route_type_accepts_what_parse_route_accepts(route: str) -> None:
    try:
        parse_route(route, "route")
        accepted = True
    except ConfigError:
        accepted = False
    assert _decodes(route) == accepted, route


def _decodes(route: str) -> bool:
    try:
        msgspec.convert(route, Route)
    except msgspec.ValidationError:
        return False
    return True
