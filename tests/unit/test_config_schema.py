"""ProviderConfig.kind: the upstream's dialect, `openai` unless the config says `anthropic`."""

from pathlib import Path

import pytest

from llmgate.config import ConfigError, load_settings


def test_kind_defaults_to_openai_and_accepts_anthropic(tmp_path: Path) -> None:
    path = tmp_path / "llmgate.toml"
    path.write_text('[[providers]]\nname = "a"\nbase_url = "https://api.anthropic.com/v1"\nkind = "anthropic"\n'
                    '[[providers]]\nname = "o"\nbase_url = "https://api.openai.com/v1"\n')
    kinds = [p.kind for p in load_settings({}, str(path)).providers]
    assert kinds == ["anthropic", "openai"]


def test_unknown_kind_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "llmgate.toml"
    path.write_text('[[providers]]\nname = "a"\nbase_url = "https://x/v1"\nkind = "watsonx"\n')
    with pytest.raises(ConfigError, match=r"providers\[0\]\.kind"):
        load_settings({}, str(path))
