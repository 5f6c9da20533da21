"""The user docs: a README a newcomer reads in minutes, and a docs site that builds in strict mode (a broken link,
a missing anchor or a page left out of the nav fails it) whose reference tables match the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec

from llmgate.config import OTHER_ENV, SERVER_ENV, ProviderConfig, RoutingConfig, ServerConfig
from tests.docs import DOCS, README, ROOT, pages, section

MAX_README_LINES = 200
CONFIGURATION = DOCS / "configuration.md"
ROUTING = DOCS / "providers-and-routing.md"
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_ROW = re.compile(r"^\| `([\w.\[\]]+)` \|(.*)$", re.M)


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of `config` into `site`."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], capture_output=True, text=True, timeout=60)


def rows(text: str) -> dict[str, list[str]]:
    """A Markdown table's rows whose first cell is a `key`: key → the other cells, stripped."""
    return {key: [cell.strip() for cell in rest.rstrip(" |").split(" | ")] for key, rest in _ROW.findall(text)}


def as_documented(value: Any) -> str:
    """A default as the tables write it: TOML, in backticks; `unset` for None."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, tuple):
        return f"`{list(value)}`"
    return f"`{value}`"


def test_the_readme_is_short() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines: move the reference to docs/"


def test_the_readme_keeps_the_two_set_up_commands() -> None:
    text = README.read_text()
    assert "OPENAI_API_KEY=sk-... python3 scripts/run.py serve" in text
    assert "\npython3 scripts/run.py test " in text


def test_the_readme_links_lead_somewhere() -> None:
    targets = [link.split("#")[0] for link in _LINK.findall(README.read_text()) if "://" not in link]
    assert targets and [target for target in targets if not (ROOT / target).exists()] == []
    assert {ROOT / target for target in targets} >= set(pages())  # every page is reachable from the README


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    built = {path.relative_to(tmp_path / "site") for path in (tmp_path / "site").rglob("index.html")}
    assert len(built) == len(pages()) and Path("index.html") in built


def test_a_broken_link_a_missing_anchor_or_a_page_outside_the_nav_fails_the_build(tmp_path: Path) -> None:
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    with (tmp_path / "docs" / "index.md").open("a") as index:
        index.write("\nSee [nothing](no-such-page.md) and [no heading](api.md#no-such-heading).\n")
    (tmp_path / "docs" / "orphan.md").write_text("# Not in the nav\n")
    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    for warned in ("'no-such-page.md'", "'#no-such-heading'", "- orphan.md"):
        assert warned in result.stderr, result.stderr


def test_the_server_table_lists_every_key_with_its_variable_and_default() -> None:
    documented = {key: (cells[0], cells[1]) for key, cells in rows(section(CONFIGURATION, "### `[server]`")).items()}
    variables = {key: f"`{var}`" for var, key in SERVER_ENV.items()}
    defaults = ServerConfig()
    assert documented == {field.name: (variables.get(field.name, "(file only)"),
                                       as_documented(getattr(defaults, field.name)))
                          for field in msgspec.structs.fields(ServerConfig)}


def test_every_other_variable_is_documented() -> None:
    text = CONFIGURATION.read_text()
    assert [var for var in OTHER_ENV if f"`{var}`" not in text] == []


def test_the_provider_table_lists_every_key() -> None:
    documented = rows(section(CONFIGURATION, "### `[[providers]]`"))
    assert list(documented) == [field.name for field in msgspec.structs.fields(ProviderConfig)]


def test_the_routing_table_lists_every_key_with_its_default() -> None:
    documented = {key: cells[0] for key, cells in rows(section(ROUTING, "## The routing table")).items()}
    defaults = RoutingConfig()
    assert documented == {field.name: as_documented(getattr(defaults, field.name))
                          for field in msgspec.structs.fields(RoutingConfig)}


def test_the_user_docs_are_no_lab_notebook() -> None:
    """Figures and the runs they come from belong in benchmarks/README.md: no dated runs or issue numbers here."""
    dated = re.compile(r"\bon \d{4}-\d\d-\d\d\b|\d{4}-\d\d-\d\d,? \d\d?:\d\d|\bissue \d+|\bsession \d+", re.I)
    found = {str(path.relative_to(ROOT)): hits for path in (README, *pages())
             if (hits := dated.findall(path.read_text()))}
    assert found == {}
