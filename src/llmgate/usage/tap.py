"""Reading a stream's usage on its way to the client, when usage is logged.

OpenAI-compatible streams carry usage only when the request asks for it (`stream_options.include_usage`); the
gateway asks for it when the client did not (`ask_for_usage`), and `StreamTap` then removes that extra final
chunk and the `"usage":null` OpenAI adds to every other chunk of such a stream, so the client receives exactly
what it asked for. The tap looks at each network chunk with a few C-level searches; it splits and filters only
a chunk that carries a usage object.
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

from llmgate.usage.meter import UsageMeter, usage_only_event, usage_only_json


class _Options(msgspec.Struct):
    include_usage: bool | None = None


class _StreamOptionsView(msgspec.Struct):
    stream_options: _Options | None = None


_decode_view = msgspec.json.Decoder(_StreamOptionsView).decode
_decode_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_decode_object = msgspec.json.Decoder(dict[str, object]).decode
_encode = msgspec.json.Encoder().encode
_ASK = b'{"stream_options":{"include_usage":true}'
_ASK_BEFORE = _ASK + b","


def ask_for_usage(raw: bytes, stream_options: msgspec.Raw | UnsetType | None = None) -> bytes | None:
    """The request body with `stream_options.include_usage` set; None when the client already asked for it
    (or the body is not a JSON object, which the upstream will refuse anyway).

    `stream_options`: the body's own, as the routing view decoded it (UNSET: the body has none), so that the
    common case, a body without it, is one concatenation with no search of the body; None: not known."""
    if stream_options is UNSET and raw[:1] == b"{":  # a routed body: an object with a `model` key at least
        return _ASK_BEFORE + raw[1:]
    if stream_options is None and raw.find(b'"stream_options"') < 0 and raw.find(b"\\u") < 0:
        body = raw.lstrip()  # not known, and no such key, even escaped: add it, parse nothing
        if body[:1] != b"{":
            return None
        rest = body[1:]
        return _ASK + (rest if rest.lstrip()[:1] == b"}" else b"," + rest)
    try:
        options = _decode_view(raw).stream_options
        if options is not None and options.include_usage is True:
            return None
        fields = _decode_top_level(raw)
        merged = _decode_object(fields["stream_options"]) if options is not None else {}  # absent or null
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    merged["include_usage"] = True
    fields["stream_options"] = msgspec.Raw(_encode(merged))
    return _encode(fields)


_USAGE_KEY = b'"usage":'
_NULL_USAGE = b',"usage":null'
# A search of JSON for a needle starting with `"` or `,` visits most of its bytes (and a fast stream arrives as a
# few large reads). So the tap looks for the usage event from
# the end, where OpenAI puts it, stops looking once it has removed it (there is one), and removes nulls only
# from a stream whose first data read has one (the split that removes them is the search that finds them).
# Substrings are looked for with `find`, not `in`: CPython 3.11 first tries a bytes `in` operand as an integer, and
# raising (and clearing) that TypeError costs more than the search itself.


def _usage_object_at(data: bytes, at: int) -> bool:
    """The `"usage":` key found at `at` holds an object (not the `null` OpenAI puts in every other chunk)."""
    value = data[at + len(_USAGE_KEY):at + len(_USAGE_KEY) + 2]
    return value[:1] == b"{" or value == b" {"


def _is_usage_event(event: bytes) -> bool:
    """OpenAI's extra usage chunk (given an event holding a usage object): no choices."""
    return event.find(b'"choices":[]') >= 0 or event.find(b'"choices": []') >= 0


_DONE_EVENTS = {b"\n\n": b"data: [DONE]\n\n", b"\r\n\r\n": b"data: [DONE]\r\n\r\n"}


def without_usage_event(events: bytes, sep: bytes) -> tuple[bytes, bytes | None]:
    """Whole `events` without the (last) usage-only event, and that event (None when there was none); events
    that carry usage beside their choices stay. Searched from the end, where the usage event comes."""
    until = len(events)
    while (at := events.rfind(_USAGE_KEY, 0, until)) >= 0:
        if not _usage_object_at(events, at):
            until = at
            continue
        begin = events.rfind(sep, 0, at)
        begin = 0 if begin < 0 else begin + len(sep)
        end = events.find(sep, at)
        end = len(events) if end < 0 else end + len(sep)
        event = events[begin:end]
        if _is_usage_event(event):
            return events[:begin] + events[end:], event
        until = begin
    return events, None


_DONE_LF = _DONE_EVENTS[b"\n\n"]
_LAST_EVENT_LF = b"\n\ndata: "
_DONE_DATA_LF = b"[DONE]\n\n"
_END_LF = b"\n\n" + _DONE_LF


_CHOICES = (b'"choices":[{', b'"choices": [{')
"""In an event: it carries choices, so it is not the usage-only event the gateway may have to remove."""
_ERROR_EVENT = (b"event: error", b'data: {"error"', b'data: {"type":"error"', b'data: {"type": "error"')


class _ErrorView(msgspec.Struct):
    error: dict[str, object] | str | None = None


_decode_error = msgspec.json.Decoder(_ErrorView).decode


def error_of_last_event(tail: bytes) -> str | None:
    """The error a stream's last event reports (OpenAI: `data: {"error": ...}`; Anthropic: `event: error`): its
    `code`, else its `type`, else "upstream_error"; None when the last event is not an error."""
    tail = tail.rstrip()
    begin = max(tail.rfind(b"\n\n"), tail.rfind(b"\r\n\r\n"))
    event = tail[begin + 1:].lstrip() if begin >= 0 else tail
    if event.startswith(b"data: [DONE]") or not any(event.find(marker) >= 0 for marker in _ERROR_EVENT):
        return None
    data = event.find(b"data:")
    try:
        error = _decode_error(event[data + 5:]).error if data >= 0 else None
    except (msgspec.ValidationError, msgspec.DecodeError):
        error = None
    if isinstance(error, dict):
        named = error.get("code") or error.get("type")
        if isinstance(named, str) and named:
            return named
    return "upstream_error"


def _null_prefix_at_end(data: bytes) -> int:
    """How many bytes at the end of `data` could be the start of `,"usage":null` (to keep until more come)."""
    for size in range(min(len(_NULL_USAGE) - 1, len(data)), 0, -1):
        if data.endswith(_NULL_USAGE[:size]):
            return size
    return 0


class StreamTap(msgspec.Struct, gc=False):
    """Feeds every chunk to the meter; with `strip`, drops the usage chunk the gateway asked for (and the
    `"usage":null` OpenAI then adds to every other chunk). A partial SSE event at a chunk's end is held back only
    until it is known not to be that usage chunk (it has choices): from then on its bytes go out as they come
    (but for a tail that could begin a `"usage":null` or the event's end), so an upstream that drips an event is
    not delayed.
    The last two chunks are kept (by reference) to tell whether the stream ended with an error event.

    A Struct, as UsageMeter is: one is made for every metered stream."""

    meter: UsageMeter
    strip: bool = False
    """Set per delivered attempt: whether its body asked for the usage the client did not."""
    _held: bytes = b""
    _sep: bytes = b"\n\n"
    _nulls: bool | None = None
    """Whether this upstream writes `"usage":null` into its chunks; known from its first read with data."""
    _removed: bool = False
    """The usage event has been removed: nothing more to look for."""
    _passing: bool = False
    """The partial event being held is not the usage event: its bytes go out as they come."""
    _last: bytes = b""
    _before_last: bytes = b""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to send on for `chunk` (all of it unless stripping)."""
        self._before_last, self._last = self._last, chunk
        if self.strip and not self._held and not self._removed and chunk.endswith(_DONE_LF):
            # the stream's last read, often all of it: its usage event, then [DONE] (where OpenAI puts them)
            out = self._last_events(chunk)
            if out is not None:
                return out
        self.meter.feed(chunk)
        if not self.strip:
            return chunk
        if not self._held and chunk.endswith(self._sep):  # whole events
            self._passing = False
            return self._strip(chunk, self._sep)
        data = self._held + chunk if self._held else chunk
        sep = self._sep
        end = data.rfind(sep)
        if end < 0 and data.find(b"\r\n\r\n") >= 0:  # an upstream that ends its lines with CRLF
            sep = self._sep = b"\r\n\r\n"
            end = data.rfind(sep)
        if end < 0:
            self._held = data
            return self._release()
        end += len(sep)
        complete, self._held = data[:end], data[end:]
        self._passing = False
        out = self._strip(complete, sep)
        return out + self._release() if self._held else out

    def _release(self) -> bytes:
        """What of the held partial event can go out now (see the class docstring)."""
        held = self._held
        if not self._passing:
            if held.find(_CHOICES[0]) < 0 and held.find(_CHOICES[1]) < 0:
                return b""
            self._passing = True
        keep = len(held) - len(held.rstrip(b"\r\n"))  # what may begin the event's end: seen with the next bytes
        if self._nulls is not False:
            keep = max(keep, _null_prefix_at_end(held))
        out, self._held = held[:len(held) - keep], held[len(held) - keep:]
        pieces = out.split(_NULL_USAGE)
        if len(pieces) > 1:
            self._nulls = True
            return b"".join(pieces)
        return out

    def _last_events(self, events: bytes) -> bytes | None:
        """Whole LF-separated `events` ending with the usage event and [DONE], without the usage event (whose
        usage goes to the meter, which then needs none of these bytes unless the raw log keeps them); None,
        having changed nothing, when they are not so (the general path then takes them).

        One `rsplit` finds both events: a bytes method call costs more in parsing its arguments than in its
        work on a short input, so this path makes as few as it can."""
        parts = events.rsplit(_LAST_EVENT_LF, 2)
        if len(parts) == 3 and parts[2] == _DONE_DATA_LF:
            usage = usage_only_json(parts[1])
            if usage is not None:
                self._removed = True
                meter = self.meter
                if meter.keeps_body:
                    meter.feed(events)
                meter.reported(usage)
                if self._nulls is False:
                    return parts[0] + _END_LF
                pieces = parts[0].split(_NULL_USAGE)  # the nulls go in the same copy as the usage event
                pieces.append(_END_LF)
                return b"".join(pieces)
        return None

    def _strip(self, events: bytes, sep: bytes) -> bytes:
        """Whole `events` as the client gets them."""
        if self._nulls is not False:  # split + join scans once; replace() scans twice (count, then copy)
            pieces = events.split(_NULL_USAGE)
            if len(pieces) > 1:
                self._nulls = True
                events = b"".join(pieces)
            elif self._nulls is None and events.find(b"data:") >= 0:  # (some upstreams send SSE comments first)
                self._nulls = False
        if not self._removed and events.rfind(_USAGE_KEY) >= 0:  # no key left: no usage event in these
            events = self._remove_usage_event(events, sep)
        return events

    def _remove_usage_event(self, events: bytes, sep: bytes) -> bytes:
        """`events` without the usage event, whose usage goes to the meter (so it does not search its tail)."""
        done = _DONE_EVENTS[sep]
        if events.endswith(done):  # where OpenAI puts it, just before [DONE]: one search and one decode
            end = len(events) - len(done)
            begin = events.rfind(sep, 0, end - len(sep))
            begin = 0 if begin < 0 else begin + len(sep)
            usage = usage_only_event(events[begin:end])
            if usage is not None:
                self._removed = True
                self.meter.reported(usage)
                return events[:begin] + done
        events, removed = without_usage_event(events, sep)
        if removed is not None:
            self._removed = True
            usage = usage_only_event(removed)
            if usage is not None:
                self.meter.reported(usage)
        return events

    def end(self) -> bytes:
        """What is still held when the stream ends (sent as it is)."""
        held, self._held = self._held, b""
        return held

    def ended_with_error(self) -> str | None:
        """The error the stream's last event reported (see `error_of_last_event`); None when it ended well."""
        last = self._last
        if not last:
            return None
        return error_of_last_event(self._before_last + last if len(last) < 4096 else last)
