"""The Bedrock provider: Converse URLs per model id, no key (requests are signed), the default base URL from the
region, and the region required."""

from pathlib import Path

import pytest
import yarl

from llmgate.config import ConfigError, ProviderConfig, load_settings
from llmgate.providers.registry import build_provider


@pytest.mark.parametrize(("model", "path"), [
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse"),
    ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0",
     "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.meta.llama3-2-1b-instruct-v1:0/converse"),
])
def test_converse_paths(model: str, path: str) -> None:
    provider = build_provider(ProviderConfig(name="b", kind="bedrock", region="us-east-1", base_url="https://x"))
    assert provider.upstream_path("/converse", "", model) == path
    assert provider.upstream_path("/converse-stream", "", model) == path + "-stream"
    # the streaming client sends the path as it is (yarl would re-encode a path it could normalise): what is
    # signed is what goes on the wire
    assert yarl.URL(f"https://x{path}").raw_path == path
    assert provider.auth_headers("anything") == () and provider.default_headers == ()
    assert provider.capabilities == {"chat"}


def test_the_base_url_defaults_to_the_regions_endpoint(tmp_path: Path) -> None:
    config = tmp_path / "llmgate.toml"
    config.write_text('[[providers]]\nname = "bedrock"\nkind = "bedrock"\nregion = "eu-west-3"\n')
    assert load_settings({"LLMGATE_CONFIG": str(config)}).providers[0].base_url == \
        "https://bedrock-runtime.eu-west-3.amazonaws.com"


def test_the_region_is_required(tmp_path: Path) -> None:
    config = tmp_path / "llmgate.toml"
    config.write_text('[[providers]]\nname = "bedrock"\nkind = "bedrock"\nbase_url = "http://proxy"\n')
    with pytest.raises(ConfigError, match=r"providers\[0\]\.region: is required for kind 'bedrock'"):
        load_settings({"LLMGATE_CONFIG": str(config)})
