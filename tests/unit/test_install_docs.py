"""Nothing tells users to install llmgate from PyPI: the distribution named `llmgate` there is an unrelated
project. Installing from the repository (a path, `git+...`, a `llmgate @ ...` direct reference) is fine."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.docs import pages

ROOT = Path(__file__).resolve().parents[2]
INSTALL = re.compile(r"\b(?:pip3?|pipx|uv(?:\s+pip|\s+tool)?)\s+(?:install|add)\b([^\n`]*)")
BY_NAME = re.compile(r"llmgate(?:\[[^\]]*\])?(?:\s*[=<>!~;].*)?")
SKIPPED_DIRS = {".git", ".venv", "tests", "__pycache__", "node_modules", ".mypy_cache", ".ruff_cache"}
SUFFIXES = {".md", ".rst", ".txt", ".yml", ".yaml", ".toml", ".py", ".sh", ".example", ".cfg", ".ini", ".json"}


def pypi_installs(text: str) -> list[str]:
    """The install commands in `text` that take `llmgate` (with extras or a version, not a direct reference)
    from an index."""
    found = []
    for match in INSTALL.finditer(text):
        args = match.group(1).split("#")[0]
        try:
            tokens = shlex.split(args)
        except ValueError:  # an unbalanced quote: the command went on past what was captured
            tokens = args.replace('"', " ").replace("'", " ").split()
        for i, token in enumerate(tokens):
            next_token = tokens[i + 1] if i + 1 < len(tokens) else ""
            if BY_NAME.fullmatch(token) and "@" not in token and not next_token.startswith("@"):
                found.append(match.group(0).split("#")[0].strip())
    return found


def documents() -> list[Path]:
    """What users read or run: READMEs, examples, the Containerfile, scripts, CI files, and the source (whose
    messages tell users what to install); not the tests, which spell the forbidden commands out."""
    paths = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS for part in relative.parts) or not path.is_file():
            continue
        if path.suffix in SUFFIXES or path.name in {"Containerfile", "Dockerfile"} or relative.parts[0] == ".ci":
            paths.append(path)
    return paths


@pytest.mark.parametrize("command", [
    "pip install llmgate", "pip install 'llmgate[bench]'", 'python -m pip install -U "llmgate>=0.1"',
    "uv pip install llmgate==0.1.0", "uv tool install llmgate", "pipx install llmgate", "uv add llmgate",
    "pip3 install --user llmgate[bench]  # for --plot",
])
def test_installs_by_name_are_found(command: str) -> None:
    assert pypi_installs(f"run `{command}` first") == [command.removeprefix("python -m ").split("  #")[0]]


@pytest.mark.parametrize("command", [
    "uv tool install /path/to/llmgate", "uv tool install '/path/to/llmgate[bench]'", "pip install .",
    'pip install "llmgate[bench] @ git+https://example.org/llmgate@v0.1.0"', "pip install llmgate @ git+https://x",
    "pip install -r requirements.txt", "pip install ./llmgate-checkout", "pip install llmgate-other",
    "pip install uv", "pip install --no-cache-dir uv",
])
def test_installs_from_the_repository_are_fine(command: str) -> None:
    assert pypi_installs(command) == []


def test_no_document_installs_llmgate_from_pypi() -> None:
    docs = documents()
    assert ROOT / "README.md" in docs and ROOT / ".ci" / "run" in docs and ROOT / "Containerfile" in docs
    assert set(pages()) <= set(docs) and ROOT / "docs" / "getting-started.md" in docs and ROOT / "mkdocs.yml" in docs
    offending = {str(path.relative_to(ROOT)): found for path in docs
                 if (found := pypi_installs(path.read_text(errors="replace")))}
    assert offending == {}
