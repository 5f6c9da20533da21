""".env.example documents every setting llmgate reads, with its real default."""

from pathlib import Path

from llmgate.config import OTHER_ENV, SERVER_ENV, ServerConfig

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def documented() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def test_every_variable_is_documented_and_nothing_else() -> None:
    assert set(documented()) == set(SERVER_ENV) | set(OTHER_ENV)


def test_documented_defaults_are_the_real_ones() -> None:
    defaults = ServerConfig()
    for var, key in SERVER_ENV.items():
        value = getattr(defaults, key)
        if isinstance(value, bool):
            expected = "1" if value else "0"
        elif value is None:  # unset: llmgate decides (documented empty)
            expected = ""
        else:
            expected = ",".join(value) if isinstance(value, tuple) else str(value)
        assert documented()[var] == expected, var
