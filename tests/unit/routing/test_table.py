"""Model → provider resolution."""

import pytest

from llmgate.config import ProviderConfig
from llmgate.errors import ModelNotFound
from llmgate.routing.table import RoutingTable


def provider(name: str, *models: str) -> ProviderConfig:
    return ProviderConfig(name=name, base_url=f"http://{name}", models=models)


def test_exact_models_first_then_catch_all() -> None:
    table = RoutingTable([provider("a", "gpt-4o"), provider("any"), provider("b", "gpt-4o", "claude")])
    assert table.provider_for("gpt-4o") == "a"  # the first declaration wins
    assert table.provider_for("claude") == "b"
    assert table.provider_for("llama3") == "any"
    assert table.default_provider == "any"
    assert table.catch_all_providers() == ["any"]
    assert table.declared_models() == [("gpt-4o", "a"), ("claude", "b")]


def test_unknown_model_without_catch_all() -> None:
    table = RoutingTable([provider("a", "gpt-4o")])
    with pytest.raises(ModelNotFound, match="`gpt-5`") as info:
        table.provider_for("gpt-5")
    assert info.value.param == "model"
    assert table.default_provider == "a"
