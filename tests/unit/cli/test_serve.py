"""`llmgate serve`: what it logs at start; the open-files limit it raises so LLMGATE_MAX_CONNECTIONS can be
reached."""

import resource
import subprocess
import sys
from pathlib import Path

import pytest
from loguru import logger

from llmgate.cli.serve import BindError, _log_start, bind_address, models_served, open_files_wanted, without_password
from llmgate.config import DeploymentConfig, ModelConfig, ProviderConfig, ServerConfig, Settings, load_settings
from llmgate.routing.table import RoutingTable
from tests.docs import DOCS, section


def test_urls_are_logged_without_their_password() -> None:
    assert without_password("postgresql://app:s3cr3t@db:5432/llm") == "postgresql://app:****@db:5432/llm"
    assert without_password("redis://:pw@cache:6379/0") == "redis://:****@cache:6379/0"
    assert without_password("redis://cache:6379/0") == "redis://cache:6379/0"


def documented_alias_example(tmp_path: Path) -> Settings:
    """The TOML example of docs/providers-and-routing.md's "Providers and aliases", loaded as `llmgate serve`
    loads it."""
    text = section(DOCS / "providers-and-routing.md", "## Providers and aliases")
    example = text[text.index("```toml\n") + len("```toml\n"):text.index("```\n\n")]
    path = tmp_path / "llmgate.toml"
    path.write_text(example)
    keys = ("OPENAI_KEY_1", "OPENAI_KEY_2", "AZURE_OPENAI_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY")
    return load_settings({key: f"sk-{key.lower()}-0123456789" for key in keys}, str(path))


def start_up_lines(settings: Settings) -> list[str]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="INFO")
    try:
        _log_start(settings)
    finally:
        logger.remove(sink)
    return lines


def test_the_documented_alias_example_serves_every_other_model_too(tmp_path: Path) -> None:
    settings = documented_alias_example(tmp_path)
    table = RoutingTable(settings.providers, settings.models, settings.routing)
    assert table.resolve("gpt-4o", "/chat/completions").name == "gpt-4o"
    assert [d.name for d, _ in table.resolve("o3-mini", "/chat/completions").entries] == ["openai-any"]
    assert [d.name for d, _ in table.resolve("claude-haiku-4-5", "/messages").entries] == ["anthropic"]


def test_only_the_catch_all_is_logged_as_serving_any_model(tmp_path: Path) -> None:
    lines = [line for line in start_up_lines(documented_alias_example(tmp_path)) if line.startswith("provider ")]
    assert [line.split(" → ")[0] for line in lines] == [
        "provider openai", "provider azure-eu", "provider anthropic", "provider groq", "provider bedrock",
        "provider openai-any"]
    assert [line.split("models: ", 1)[1] for line in lines] == [
        "via aliases gpt-4o, gpt-4o-mini)",
        "via aliases gpt-4o)",
        "claude-*)",
        "llama-*)",
        "anthropic.*, meta.*)",
        "any (the catch-all: every model no alias or provider declares, as asked))"]


def test_what_each_provider_serves() -> None:
    one = ProviderConfig(name="one", base_url="http://one")
    two = ProviderConfig(name="two", base_url="http://two", models=("m2",))
    three = ProviderConfig(name="three", base_url="http://three")
    four = ProviderConfig(name="four", base_url="http://four")
    alias = ModelConfig(name="a", deployments=(DeploymentConfig(provider="one"), DeploymentConfig(provider="two"),
                                               DeploymentConfig(provider="one", model="other")))
    settings = Settings(server=ServerConfig(), providers=(one, two, three, four), models=(alias,))
    assert models_served(settings) == {
        "one": "via aliases a", "two": "m2; via aliases a",
        "three": "any (the catch-all: every model no alias or provider declares, as asked)",
        "four": "none (no alias uses it; three is the catch-all)"}
    nothing_else = Settings(server=ServerConfig(), providers=(one,), models=(alias,))
    assert models_served(nothing_else) == {"one": "via aliases a"}


_RAISE = """
import resource, sys
from llmgate.cli.serve import raise_open_files_limit
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
warning = raise_open_files_limit((int(sys.argv[1]), int(sys.argv[2])))
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], warning is not None)
"""


def _raise_in_child(best: int, needed: int) -> tuple[int, bool]:
    # In a child process: the test run's own limit stays as it was.
    out = subprocess.run([sys.executable, "-c", _RAISE, str(best), str(needed)], capture_output=True, text=True,
                         check=True)
    soft, warned = out.stdout.split()
    return int(soft), warned == "True"


def test_the_soft_limit_is_raised_to_what_the_connections_need() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = 1000 if hard == resource.RLIM_INFINITY else min(1000, hard)
    assert _raise_in_child(wanted, 300) == (wanted, False)


def test_the_soft_limit_goes_up_to_the_hard_one_and_only_a_shortfall_below_the_need_is_reported() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("this machine has no hard open-files limit to fall short of")
    assert _raise_in_child(hard + 1, hard) == (hard, False)  # what upstream connections may add: best effort
    assert _raise_in_child(hard + 2, hard + 1) == (hard, True)


def test_each_connection_counts_twice_at_most_and_once_at_least() -> None:
    assert open_files_wanted(10_000) == (20_256, 10_256)  # the client's and its upstream's; the client's


@pytest.mark.parametrize(("host", "address"), [
    ("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("::1", "::1"), ("[::1]", "::1"), ("localhost", "127.0.0.1"),
    ("LOCALHOST", "127.0.0.1"),
])
def test_the_host_becomes_an_address_granian_takes(host: str, address: str) -> None:
    assert bind_address(host) == address


def test_a_host_name_that_does_not_resolve_is_a_one_line_error() -> None:
    problem = bind_address("no-such-host.invalid")
    assert isinstance(problem, BindError)
    assert problem.message.startswith("server.host (LLMGATE_HOST, --host): cannot listen on 'no-such-host.invalid': "
                                      "it is not an IP address and the name does not resolve (")


def test_jwt_issuers_close_v1_enough_to_listen_beyond_loopback(tmp_path: Path) -> None:
    from llmgate.cli.serve import check_exposure

    path = tmp_path / "llmgate.toml"
    path.write_text('[server]\nhost = "0.0.0.0"\n')
    assert "neither LLMGATE_MASTER_KEY" in (check_exposure(load_settings({}, str(path))) or "")
    path.write_text('[server]\nhost = "0.0.0.0"\n[[auth.jwt]]\nissuer = "https://login.example.com/"\n'
                    'audiences = ["llmgate"]\n')
    assert check_exposure(load_settings({}, str(path))) is None
