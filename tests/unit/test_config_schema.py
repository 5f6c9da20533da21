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


def test_auth_jwt_issuers(tmp_path: Path) -> None:
    path = tmp_path / "llmgate.toml"
    path.write_text('[[auth.jwt]]\nissuer = "https://login.example.com/"\naudiences = ["llmgate"]\n'
                    'algorithms = ["ES256"]\nmodels_claim = "scope"\n')
    (issuer,) = load_settings({}, str(path)).auth.jwt
    assert (issuer.issuer, issuer.audiences, issuer.algorithms, issuer.jwks_url) == \
        ("https://login.example.com/", ("llmgate",), ("ES256",), "")
    assert (issuer.project_claim, issuer.user_claim, issuer.models_claim, issuer.leeway_s) == \
        ("llmgate_project", "sub", "scope", 30.0)


@pytest.mark.parametrize(("body", "where"), [
    ('issuer = "https://x/"\naudiences = ["a"]\nalgorithms = ["HS256"]\n', r"auth\.jwt\[0\]\.algorithms\[0\]"),
    ('issuer = "https://x/"\naudiences = ["a"]\nalgorithms = ["none"]\n', r"auth\.jwt\[0\]\.algorithms\[0\]"),
    ('issuer = "https://x/"\naudiences = []\n', r"auth\.jwt\[0\]\.audiences"),
    ('issuer = "login.example.com"\naudiences = ["a"]\n', r"auth\.jwt\[0\]\.issuer"),
    ('issuer = "https://x/"\naudiences = ["a"]\njwks = "https://x/keys"\n', r"auth\.jwt\[0\]"),
])
def test_bad_jwt_issuers_name_the_key(tmp_path: Path, body: str, where: str) -> None:
    path = tmp_path / "llmgate.toml"
    path.write_text("[[auth.jwt]]\n" + body)
    with pytest.raises(ConfigError, match=where):
        load_settings({}, str(path))
