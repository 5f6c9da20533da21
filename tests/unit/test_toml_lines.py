"""toml_lines: the line each key path of a TOML text is written on."""

import tomllib
from typing import Any

import pytest

from llmgate.toml_lines import KeyPath, key_lines, line_of

DOCUMENT = '''\
# a comment [not.a.table]
title = "x # not a comment"
multi = """
[fake]
key = "no \\""" "
"""
literal = \'\'\'
[[fake]]
\'\'\'

[server]
port = 8000   # trailing comment
"dotted.key" = 1
a.b . c = true

[[providers]]
name = "a"
timeouts = { connect_s = 2, idle_s = 5, nested = { x = 1 } }

[[providers]]
name = "b"
models = [
  "one",   # a comment inside an array
  "two",
]

[providers.timeouts]
idle_s = 3

[[models]]
name = "m1"
[[models.deployments]]
provider = "a"
[[models.deployments]]
provider = "b"

[[models]]
name = "m2"
deployments = [{ provider = "a" }, { provider = "b", weight = 2 }]
escaped = "a \\" [x] \\\\"
'quoted key' = 'v'
when = 1979-05-27T07:32:00Z
empty = []
grid = [[1, 2], [3]]
'''


def line(snippet: str, text: str = DOCUMENT) -> int:
    """The line `snippet` is on (it must be there once)."""
    assert text.count(snippet) == 1, snippet
    return text[:text.index(snippet)].count("\n") + 1


def paths(value: Any, prefix: KeyPath = ()) -> list[KeyPath]:
    """Every key path in what tomllib read."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    out = []
    for key, item in items:
        out.append((*prefix, key))
        out += paths(item, (*prefix, key))
    return out


def test_every_key_tomllib_reads_is_found() -> None:
    lines = key_lines(DOCUMENT)
    assert [p for p in paths(tomllib.loads(DOCUMENT)) if p not in lines] == []


@pytest.mark.parametrize(("path", "snippet"), [
    (("title",), "title ="),
    (("literal",), "literal ="),
    (("server",), "[server]"),
    (("server", "port"), "port = 8000"),
    (("server", "dotted.key"), '"dotted.key"'),
    (("server", "a", "b", "c"), "a.b . c"),
    (("providers", 0), '[[providers]]\nname = "a"'),
    (("providers", 0, "timeouts", "idle_s"), "timeouts = {"),
    (("providers", 0, "timeouts", "nested", "x"), "timeouts = {"),
    (("providers", 1, "models", 1), '"two"'),
    (("providers", 1, "timeouts"), "[providers.timeouts]"),
    (("providers", 1, "timeouts", "idle_s"), "idle_s = 3"),
    (("models", 0, "deployments", 1, "provider"), 'provider = "b"\n'),
    (("models", 1, "name"), 'name = "m2"'),
    (("models", 1, "deployments", 1, "weight"), "deployments = [{"),
    (("models", 1, "quoted key"), "'quoted key'"),
    (("models", 1, "when"), "when ="),
    (("models", 1, "grid", 1, 0), "grid ="),
])
def test_lines_of_keys(path: KeyPath, snippet: str) -> None:
    assert key_lines(DOCUMENT)[path] == line(snippet)


def test_arrays_of_tables_are_counted_per_parent_item() -> None:
    lines = key_lines(DOCUMENT)
    headers = [i + 1 for i, text in enumerate(DOCUMENT.splitlines()) if text == "[[models.deployments]]"]
    assert (lines[("models", 0, "deployments", 0)], lines[("models", 0, "deployments", 1)]) == tuple(headers)
    assert ("models", 1, "deployments", 2) not in lines  # the second model's inline array has two items


def test_a_missing_key_points_at_its_table() -> None:
    lines = key_lines(DOCUMENT)
    assert line_of(lines, ("providers", 1, "base_url")) == line('name = "b"') - 1  # its [[providers]] header
    assert line_of(lines, ("models", 1, "deployments", 0, "weight")) == line("deployments = [{")
    assert line_of(lines, ("routing", "max_attempts")) is None


def test_multi_line_array_items_are_on_their_own_lines() -> None:
    text = 'deployments = [\n  { provider = "a" },\n\n  { provider = "b", weight = 0 },\n]\n'
    assert key_lines(text)[("deployments", 1, "weight")] == 4


def test_crlf_and_text_that_is_not_toml() -> None:
    assert key_lines("[server]\r\nport = 1\r\n")[("server", "port")] == 2
    assert key_lines('[server]\nport = 1\nname = "unterminated\n') == {("server",): 1, ("server", "port"): 2,
                                                                        ("server", "name"): 3}
