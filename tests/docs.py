"""The user documentation as the tests read it: README.md and the pages of docs/, their TOML examples and sections."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^([ \t]*)```toml\n(.*?)^\1```", re.S | re.M)


def pages() -> list[Path]:
    """Every Markdown page of the docs site, in a stable order."""
    return sorted(DOCS.rglob("*.md"))


def toml_examples() -> list[tuple[str, str]]:
    """Every TOML example in the README and the docs, as (`path:line`, the example dedented)."""
    examples = []
    for path in [README, *pages()]:
        text = path.read_text()
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            examples.append((f"{path.relative_to(ROOT)}:{line}", textwrap.dedent(match.group(2))))
    return examples


def section(path: Path, heading: str) -> str:
    """The text under `heading` (e.g. "## Container") up to the next heading of the same or a higher level;
    lines in fenced code blocks are never headings."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == heading) + 1
    in_code = False
    for end in range(start, len(lines)):
        line = lines[end]
        if line.lstrip().startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(rf"#{{1,{level}}} ", line):
            return "".join(lines[start:end])
    return "".join(lines[start:])
