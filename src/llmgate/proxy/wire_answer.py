"""One upstream HTTP/1.1 connection of proxy/wire.py, and the answer being read on it: the head, then the body
framed by content-length, by chunks, or by the connection's end, handed over whole or as it arrives.

The parser keeps its place between reads (inside a chunk, before its line break, in the trailers), so each read
is looked at once, and a streamed answer's bytes are handed over as they come, a chunk split across reads too.
"""

from __future__ import annotations

import asyncio

MAX_HEAD = 65536
"""A response head (or a chunk's size line and the trailers) past this is refused (as aiohttp's limits do)."""
READ_LIMIT = 65536
"""A streamed answer's bytes not yet taken past this pause reading the connection until they are: a slow client
leaves them in the upstream's socket buffers, not in ours."""
NO_BODY = frozenset((204, 304))
_HEX = b"0123456789abcdefABCDEF"
_SIZE_LINE, _CHUNK_END = -1, -2
"""The chunked parser's places other than inside a chunk's data: before a size line, before a chunk's CRLF."""


class WireError(Exception):
    """The exchange failed on the wire (refused, reset, closed early, malformed answer)."""


class Answer:
    """The response being read; `chunks` holds its body's bytes not yet taken (a streamed answer's reader takes
    them as they come; a whole answer's are joined at its end)."""

    __slots__ = ("chunk_left", "chunks", "done", "error", "head", "headers", "keep_alive", "keep_alive_s", "length",
                 "status", "stream", "unread", "waiter")

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head = True
        self.length = -1
        """body bytes still expected; -1 chunked, -2 until the connection closes"""
        self.chunk_left = _SIZE_LINE
        self.chunks: list[bytes] = []
        self.unread = 0
        self.keep_alive = True
        self.keep_alive_s: float | None = None
        """How long the upstream keeps the connection open while idle, when it says (`keep-alive: timeout=N`)."""
        self.done = False
        self.error: WireError | None = None
        self.waiter: asyncio.Future[None] | None = None
        """set when the answer moves on: a whole one at its end, a streamed one at its head and each read too"""

    async def progress(self) -> None:
        """Wait until the answer moves on (see `waiter`); raise its error if it failed (once the bytes that came
        before the failure have been taken)."""
        if self.error is None and not self.done:
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            await waiter
        if self.error is not None and not (self.stream and self.chunks):
            raise self.error

    def take(self) -> bytes:
        """The body's bytes that have arrived and not been taken, at once."""
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.unread = 0
        return data

    def wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Connection(asyncio.Protocol):
    """One upstream connection; reads at most one answer at a time."""

    __slots__ = ("_answer", "_buffer", "_head_only", "_paused", "closed", "idle_for", "idle_since", "reading_paused",
                 "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.idle_for = 0.0
        """How long it may wait idle in the pool before it is closed rather than reused."""
        self.reading_paused = False
        self._buffer = bytearray()
        self._answer: Answer | None = None
        self._head_only = False
        self._paused: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def expect(self, head_only: bool, stream: bool) -> Answer:
        """Start reading the next answer (HEAD: no body; `stream`: its bytes handed over as they arrive)."""
        self._answer, self._head_only = Answer(stream), head_only
        return self._answer

    def data_received(self, data: bytes) -> None:
        answer = self._answer
        if answer is None:  # bytes nobody asked for: the connection cannot be trusted with a request
            self.closed = True
            assert self.transport is not None
            self.transport.close()
            return
        self._buffer += data
        try:
            self._parse(answer)
        except (ValueError, IndexError) as exc:
            self._fail(answer, WireError(f"malformed answer from the upstream: {exc}"))
            return
        if answer.stream:
            if answer.unread > READ_LIMIT and not self.reading_paused and not self.closed:
                self.reading_paused = True
                assert self.transport is not None
                self.transport.pause_reading()
            answer.wake()
        elif answer.done:
            answer.wake()

    def resume(self) -> None:
        """The streamed answer's bytes were taken: read on if reading was paused."""
        if self.reading_paused:
            self.reading_paused = False
            if not self.closed:
                assert self.transport is not None
                self.transport.resume_reading()

    def eof_received(self) -> bool | None:
        self.closed = True
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is not None:
            if not answer.head and answer.length == -2:
                answer.keep_alive = False
                self._finish(answer)
            else:
                self._fail(answer, WireError(
                    f"the upstream closed the connection before the answer was complete{f' ({exc})' if exc else ''}"))
            answer.wake()
        if self._paused is not None and not self._paused.done():
            self._paused.set_exception(WireError("the upstream closed the connection"))

    def pause_writing(self) -> None:
        self._paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)
        self._paused = None

    def leftover(self) -> bool:
        """Bytes came past the answer's end: the next answer on this connection could not be told from them."""
        return bool(self._buffer)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is full."""
        if self._paused is not None:
            await self._paused

    def _fail(self, answer: Answer, exc: WireError) -> None:
        """The answer cannot be read on: the connection is dropped (nothing after it could be trusted)."""
        self._answer = None
        if answer.error is None and not answer.done:
            answer.error = exc
        answer.wake()
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    def _finish(self, answer: Answer) -> None:
        answer.done = True
        self._answer = None

    def _parse(self, answer: Answer) -> None:
        if answer.head and not self._parse_head(answer):
            return
        buffer = self._buffer
        length = answer.length
        if length == -1:
            self._parse_chunks(answer)
        elif length >= 0:
            take = min(length, len(buffer))
            if take:
                answer.chunks.append(bytes(buffer[:take]))
                answer.unread += take
                del buffer[:take]
                answer.length = length = length - take
            if not length:
                self._finish(answer)
        elif buffer:  # until the connection closes
            answer.chunks.append(bytes(buffer))
            answer.unread += len(buffer)
            buffer.clear()

    def _parse_head(self, answer: Answer) -> bool:
        """Read the status line and headers once they are all here (skipping 1xx answers); False: not yet."""
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise ValueError("response head too long")
                return False
            lines = bytes(buffer[:end]).split(b"\r\n")
            del buffer[:end + 4]
            version, _, rest = lines[0].partition(b" ")
            status = int(rest[:3])
            if not version.startswith(b"HTTP/1.") or not 100 <= status <= 599:
                raise ValueError(f"bad status line {lines[0][:40]!r}")
            if status >= 200 or status == 101:
                break
        answer.status, answer.head = status, False
        length, chunked, keep_alive = _read_headers(lines, answer, version == b"HTTP/1.1")
        if self._head_only or status in NO_BODY:
            length = 0
        elif chunked:
            length = -1
        elif length == -2:
            keep_alive = False
        answer.length, answer.keep_alive = length, keep_alive
        return True

    def _parse_chunks(self, answer: Answer) -> None:
        buffer, chunks = self._buffer, answer.chunks
        while buffer:
            left = answer.chunk_left
            if left > 0:  # inside a chunk's data: whatever of it has come
                take = min(left, len(buffer))
                chunks.append(bytes(buffer[:take]))
                answer.unread += take
                del buffer[:take]
                answer.chunk_left = left - take or _CHUNK_END
            elif left == _CHUNK_END:
                if len(buffer) < 2:
                    return
                if buffer[:2] != b"\r\n":
                    raise ValueError("a chunk's data is longer than its size")
                del buffer[:2]
                answer.chunk_left = _SIZE_LINE
            elif not self._parse_size_line(answer):
                return

    def _parse_size_line(self, answer: Answer) -> bool:
        """Read a chunk's size line (the last chunk's trailers with it); False: not all here yet, or the end."""
        buffer = self._buffer
        line_end = buffer.find(b"\r\n")
        if line_end < 0:
            if len(buffer) > MAX_HEAD:
                raise ValueError("chunk size line too long")
            return False
        size_field = bytes(buffer[:line_end]).split(b";", 1)[0].strip()
        if not size_field or size_field.strip(_HEX):  # int() would take "-1", "+1", "0x1", "1_0"
            raise ValueError(f"bad chunk size {size_field[:20]!r}")
        size = int(size_field, 16)
        if size:
            del buffer[:line_end + 2]
            answer.chunk_left = size
            return True
        trailers_end = buffer.find(b"\r\n\r\n", line_end)  # at line_end itself when no trailers
        if trailers_end < 0:
            if len(buffer) > MAX_HEAD:
                raise ValueError("trailers too long")
            return False
        del buffer[:trailers_end + 4]
        self._finish(answer)
        return False


def _read_headers(lines: list[bytes], answer: Answer, keep_alive: bool) -> tuple[int, bool, bool]:
    """Append the head's header lines to the answer's headers (names lower-cased), note how long the upstream keeps
    the connection idle; the body's framing: content-length (-2: none), chunked, and whether the connection stays
    open."""
    length, chunked, headers = -2, False, answer.headers
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise ValueError("header line without a colon")
        name, value = name.strip().lower(), value.strip()
        headers.append((name, value))
        if name == b"content-length":
            # digits only (int() would take "-1", "+1", " 1_0"); two that differ leave the body's end unknown
            if not value.isdigit() or (length != -2 and int(value) != length):
                raise ValueError(f"bad content-length {value[:20]!r}")
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value.lower().endswith(b"chunked")
        elif name == b"connection":
            tokens = value.lower()
            keep_alive = b"close" not in tokens and (keep_alive or b"keep-alive" in tokens)
        elif name == b"keep-alive":  # e.g. "timeout=5, max=1000" (Node, Apache)
            for param in value.split(b","):
                key, _, seconds = param.strip().partition(b"=")
                if key.lower() == b"timeout" and seconds.isdigit():
                    answer.keep_alive_s = float(seconds)
    return length, chunked, keep_alive
