"""Heavy modules load only when used: not by the app (every worker) nor by the `llmgate` command's parser."""

from __future__ import annotations

import subprocess
import sys

import pytest

# The Postgres and Redis drivers, the CLI's HTTP client, the tables and plotting libraries, the tokenizer, PyJWT.
HEAVY = ("asyncpg", "redis", "httpx", "rich", "matplotlib", "tiktoken", "jwt")


@pytest.mark.parametrize("module", ["llmgate.app", "llmgate.cli"])
def test_heavy_modules_are_not_imported(module: str) -> None:
    code = (f"import sys, {module}; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
