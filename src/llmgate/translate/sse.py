"""An incremental Server-Sent Events parser: feed it bytes as they arrive, get whole events back."""

from __future__ import annotations

from typing import NamedTuple


class Event(NamedTuple):
    """One SSE event: its `event:` name ("" when absent) and its `data:` lines joined by newlines."""

    event: str
    data: str


class SSEParser:
    """Splits a byte stream into events; bytes of an unfinished event (or a split UTF-8 character) wait.

    Follows the WHATWG event-stream rules that matter here: CRLF, LF or CR line ends, `:` comment lines,
    one optional space after the colon, several `data:` lines joined with a newline, blank line dispatches.
    """

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        """The events completed by `chunk`."""
        buffer = self._buffer + chunk
        if buffer.find(b"\r") >= 0:
            # a CR at the very end may be the first half of a CRLF: keep it for the next chunk
            keep_cr = buffer.endswith(b"\r")
            buffer = (buffer[:-1] if keep_cr else buffer).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buffer += b"\r"
        events: list[Event] = []
        start = 0
        while (end := buffer.find(b"\n", start)) != -1:
            self._line(buffer[start:end], events)
            start = end + 1
        self._buffer = buffer[start:]
        return events

    def _line(self, raw: bytes, events: list[Event]) -> None:
        if not raw:
            if self._data:
                events.append(Event(self._event, "\n".join(self._data)))
            self._event, self._data = "", []
            return
        line = raw.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if not name and colon:  # a comment (": keep-alive")
            return
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value

    def close(self) -> list[Event]:
        """Events left when the stream ends: a last event not followed by a blank line still counts."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        self._buffer = b""
        return events


class SSETranslator:
    """What the SSE stream translators share: the upstream's events parsed as its bytes come, each translated by
    the subclass's `_translate` until the stream is `finished`."""

    def __init__(self) -> None:
        self._parser = SSEParser()
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        """The translated bytes of the events `data` completes."""
        if self.finished:
            return b""
        out = bytearray()
        for event in self._parser.feed(data):
            out += self._translate(event)
            if self.finished:
                break
        return bytes(out)

    def _translate_rest(self) -> bytes:
        """The upstream ended: the translation of the events its last bytes completed."""
        return b"".join(self._translate(event) for event in self._parser.close())

    def _translate(self, event: Event) -> bytes:
        raise NotImplementedError
