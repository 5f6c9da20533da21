"""Heavy modules load only when used: not by the app (every worker) nor by the `llmgate` command's parser."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# The Postgres and Redis drivers, the CLI's HTTP client, the tables and plotting libraries, the tokenizer, the
# OpenTelemetry SDK (tracing off), Google's auth library (vertex providers only), AWS's SDK (bedrock only), the
# admin UI's templates (loaded by create_app only when the management API is on), PyJWT (no [[auth.jwt]]).
HEAVY = ("asyncpg", "redis", "httpx", "rich", "matplotlib", "tiktoken", "opentelemetry", "google", "botocore",
         "jinja2", "jwt")


@pytest.mark.parametrize("module", ["llmgate.app", "llmgate.cli"])
def test_heavy_modules_are_not_imported(module: str) -> None:
    code = (f"import sys, {module}; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_google_auth_loads_only_when_a_vertex_provider_needs_a_token(tmp_path: Path) -> None:
    """A gateway configured with Gemini and Vertex providers imports neither google-auth nor the translators
    until a request needs them."""
    config = tmp_path / "llmgate.toml"
    config.write_text('[[providers]]\nname = "g"\nkind = "gemini"\napi_key = "k"\nmodels = ["gemini-*"]\n'
                      '[[providers]]\nname = "v"\nkind = "vertex"\nproject = "p"\nlocation = "us-central1"\n'
                      'models = ["claude-*"]\n')
    code = ("import sys; from llmgate.config import load_settings; from llmgate.app import create_app; "
            f"create_app(load_settings({{'LLMGATE_DATA_DIR': {str(tmp_path)!r}}}, {str(config)!r})); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'google' or 'gemini_' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
