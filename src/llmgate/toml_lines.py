"""Where each key of a TOML document is written (tomllib gives values, not positions), for errors that point at
the line: `key_lines(text)` maps every key path, e.g. `("providers", 0, "timeouts", "idle_s")`, to its line.

Table headers, arrays of tables (`[[providers]]`, counted per parent item), dotted keys, quoted keys, inline
tables and arrays (each item at the line it starts on, so an array spread over lines points at the right item)
are followed; strings, multi-line ones included, and comments are skipped. The text is expected to be valid TOML
(tomllib has read it first): on anything unexpected the scan stops and keeps what it found.
"""

from __future__ import annotations

import bisect
import contextlib
import tomllib
from collections.abc import Mapping

KeyPath = tuple[str | int, ...]

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_BLANK = " \t\r"


def key_lines(text: str) -> dict[KeyPath, int]:
    """Every key path written in `text` (tables, keys, array items) → its 1-based line."""
    scanner = _Scanner(text)
    with contextlib.suppress(IndexError, ValueError, tomllib.TOMLDecodeError):
        scanner.document()  # stops on what is not the TOML tomllib accepted: what it found so far still helps
    return scanner.lines


def line_of(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`; for a key that is not written (a missing one), the line of the nearest table or item
    around it that is; None when nothing on the way is written."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


class _Scanner:
    """A forward scan of a TOML text that records the line of each key path it meets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[KeyPath, int] = {}
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]
        self._items: dict[KeyPath, int] = {}  # array of tables → index of its latest item

    def line(self) -> int:
        return bisect.bisect_left(self._newlines, self.pos) + 1

    def peek(self, size: int = 1) -> str:
        return self.text[self.pos:self.pos + size]

    def skip_blank(self, newlines: bool = False) -> None:
        """Skip spaces and tabs (and newlines and comments when `newlines`)."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in _BLANK or (newlines and char == "\n"):
                self.pos += 1
            elif newlines and char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def document(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return
            if self.peek() == "[":
                table = self.header()
            else:
                self.key_value(table)

    def header(self) -> KeyPath:
        """`[a.b]` or `[[a.b]]`: the table's path, array items numbered."""
        line, is_array = self.line(), self.peek(2) == "[["
        self.pos += 2 if is_array else 1
        self.skip_blank()
        parts = self.key()
        self.pos += 2 if is_array else 1  # the closing bracket(s)
        path: KeyPath = ()
        for i, part in enumerate(parts):
            path = (*path, part)
            if is_array and i == len(parts) - 1:
                self._items[path] = self._items.get(path, -1) + 1
                self.lines.setdefault(path, line)
                path = (*path, self._items[path])
            elif path in self._items:  # a table inside the latest item of an array of tables
                path = (*path, self._items[path])
            self.lines.setdefault(path, line)
        return path

    def key_value(self, table: KeyPath) -> None:
        """`a.b = value`, in a table or an inline table."""
        line = self.line()
        path = table
        for part in self.key():
            path = (*path, part)
            self.lines.setdefault(path, line)
        self.skip_blank()
        if self.peek() != "=":
            raise ValueError("expected =")
        self.pos += 1
        self.skip_blank()
        self.value(path)

    def key(self) -> list[str]:
        """A (dotted) key; leaves the position after it and the blanks that follow."""
        parts = []
        while True:
            self.skip_blank()
            char = self.peek()
            if char in "\"'":
                start = self.pos
                self.string()
                parts.append(tomllib.loads(f"k = {self.text[start:self.pos]}")["k"])
            else:
                start = self.pos
                while self.pos < len(self.text) and self.text[self.pos] in _BARE:
                    self.pos += 1
                if start == self.pos:
                    raise ValueError("expected a key")
                parts.append(self.text[start:self.pos])
            self.skip_blank()
            if self.peek() != ".":
                return parts
            self.pos += 1

    def value(self, path: KeyPath) -> None:
        char = self.peek()
        if char in "\"'":
            self.string()
        elif char == "[":
            self.array(path)
        elif char == "{":
            self.inline_table(path)
        else:  # a number, boolean or date: up to what ends a value
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}#\n":
                self.pos += 1

    def array(self, path: KeyPath) -> None:
        self.pos += 1
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "]":
                self.pos += 1
                return
            self.lines.setdefault((*path, index), self.line())
            self.value((*path, index))
            index += 1
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.pos += 1

    def inline_table(self, path: KeyPath) -> None:
        self.pos += 1
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "}":
                self.pos += 1
                return
            self.key_value(path)
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.pos += 1

    def string(self) -> None:
        """Skip a basic, literal or multi-line string."""
        quote = self.peek()
        if self.peek(3) == quote * 3:
            end = self.text.index(quote * 3, self.pos + 3) if quote == "'" else self._basic_end(self.pos + 3, True)
            self.pos = end + 3
            while self.peek() == quote:  # up to two quotes may end the content right before the delimiter
                self.pos += 1
        elif quote == "'":
            self.pos = self.text.index("'", self.pos + 1) + 1
        else:
            self.pos = self._basic_end(self.pos + 1, False) + 1

    def _basic_end(self, pos: int, multiline: bool) -> int:
        """Where the closing `"` (or `\"\"\"`) of a basic string starting at `pos` is; backslashes escape."""
        closing = '"""' if multiline else '"'
        while not self.text.startswith(closing, pos):
            pos += 2 if self.text[pos] == "\\" else 1
        return pos
