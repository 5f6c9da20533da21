"""llmgate in process: `Services` opened on the test's event loop with its upstream clients faked, the app
(`create_app`: /v1 straight to the pipeline, the rest to Litestar) driven with ASGI messages, and routing's
clock set by hand.

    with Gateway(upstream=replies(reply_json({"id": "chatcmpl-1"}))) as gw:
        response = gw.post("/v1/chat/completions", json={"model": "m"})
        gw.sent[-1].key, response.headers["x-llmgate-attempts"], gw.clock.advance(60)

Calls made from a sync test run on the gateway's loop (`asyncio.Runner`) and return when the response is
complete; the loop runs only meanwhile. Concurrent requests, clients that leave: `await gw.send(...)` in a
coroutine given to `gw.run`.
"""

from __future__ import annotations

import asyncio
import io
import json as jsonlib
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import httpx
import httpx2

from llmgate.app import create_app
from llmgate.config import ProviderConfig, load_settings
from llmgate.log import known_secrets, setup_logging
from llmgate.services import ClientFactory, Services
from tests.inprocess.upstream import FakeUpstream, Handler, Sent, replies
from tests.servers import MASTER_KEY, UPSTREAM_KEY

T = TypeVar("T")
UPSTREAM_URL = "http://upstream.test"
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


class FakeClock:
    """Routing's `now`: moves only when told (breakers' open time, cooldowns, the time budget)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _LogRouter(io.TextIOBase):
    """Loguru's sink is process-wide: each line goes to the log of the gateway whose loop is running (the latest
    gateway's when none is), so two gateways in one test keep their logs apart as two processes would."""

    def __init__(self) -> None:
        self.logs: dict[asyncio.AbstractEventLoop, io.StringIO] = {}
        self.secrets: dict[asyncio.AbstractEventLoop, list[str]] = {}

    def write(self, text: str) -> int:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        log = self.logs.get(loop) if loop is not None else None
        if log is None and self.logs:
            log = list(self.logs.values())[-1]
        return log.write(text) if log is not None else len(text)

    def add(self, loop: asyncio.AbstractEventLoop, secrets: list[str], level: str, json_lines: bool) -> io.StringIO:
        """Log `loop`'s lines apart; every live gateway's secrets stay scrubbed."""
        self.logs[loop], self.secrets[loop] = io.StringIO(), secrets
        setup_logging(level, json_lines, [s for known in self.secrets.values() for s in known], self)
        return self.logs[loop]

    def remove(self, loop: asyncio.AbstractEventLoop) -> None:
        self.logs.pop(loop, None)
        self.secrets.pop(loop, None)


_LOGS = _LogRouter()


class Response:
    """What the client received: the start, and every body message as it was sent."""

    def __init__(self) -> None:
        self.status_code = 0
        self.headers = httpx.Headers()
        self.chunks: list[bytes] = []
        """The bodies of the `http.response.body` messages, in order (keep-alives and empty ends included)."""
        self.complete = False
        """The last body message came (`more_body` false)."""

    @property
    def content(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response {self.status_code} {self.content[:200]!r}>"


class Gateway:
    """llmgate with fake upstreams, in this process (see the module docstring)."""

    def __init__(self, config: str = "", upstream: Handler | None = None, env: Mapping[str, str | None] | None = None,
                 clock: FakeClock | None = None, clients: ClientFactory | None = None) -> None:
        """`config`: the TOML file's text; `env`: over the defaults (the master key, a fresh data dir, the OpenAI
        provider at UPSTREAM_URL; None removes one); `clients`: real ones instead of FakeUpstreams."""
        self._root = Path(tempfile.mkdtemp(prefix="llmgate-inprocess-"))
        self._config = self._root / "llmgate.toml"
        self.env = {"OPENAI_BASE_URL": f"{UPSTREAM_URL}/v1", "OPENAI_API_KEY": UPSTREAM_KEY,
                    "LLMGATE_MASTER_KEY": MASTER_KEY, "LLMGATE_DATA_DIR": str(self._root / "data"),
                    # every request comes from 127.0.0.1: tests of refusals would soon meet the failed-auth
                    # throttle instead; its own tests turn it on
                    "LLMGATE_AUTH_FAIL_BURST": "0"}
        if config:  # else no config file, as `llmgate serve` without one
            self._config.write_text(config)
            self.env["LLMGATE_CONFIG"] = str(self._config)
        self.env.update(env or {})
        self.env = {name: value for name, value in self.env.items() if value is not None}
        self.upstream: Handler = upstream or replies()
        """Answers every upstream request; tests may swap it between requests."""
        self.sent: list[Sent] = []
        """Every upstream request, in order, across providers."""
        self.clock = clock or FakeClock()
        self._clients = clients
        self._log = io.StringIO()
        self.url = "http://127.0.0.1:8000"
        self._runner: asyncio.Runner | None = None
        self.services: Services
        self.app: Any = None

    @property
    def http(self) -> httpx.Client:
        """A new httpx client whose requests this gateway serves (the OpenAI SDK: `http_client=gw.http`; the SDK
        closes it with itself)."""
        return httpx.Client(transport=Transport(self), base_url=self.url, timeout=None)

    @property
    def http2(self) -> httpx2.Client:
        """The same in httpx2 (the Anthropic SDK: `http_client=gw.http2`)."""
        return httpx2.Client(transport=Transport2(self), base_url=self.url, timeout=None)

    def _client(self, provider: ProviderConfig) -> FakeUpstream:
        return FakeUpstream(provider, lambda sent: self.upstream(sent), self.sent)

    def __enter__(self) -> Gateway:
        self._runner = asyncio.Runner()
        try:
            self.run(self._open())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    async def _open(self) -> None:
        settings = load_settings(self.env)
        self.services = Services(settings, clients=self._clients or self._client, clock=self.clock)
        self.app = create_app(settings, services=self.services)
        self._log = _LOGS.add(asyncio.get_running_loop(), known_secrets(settings), settings.server.log_level,
                              settings.server.log_json)
        await self.services.open()

    def __exit__(self, *_: object) -> None:
        try:
            if self._runner is not None and self.app is not None:
                self.run(self.services.close())
        finally:
            if self._runner is not None:
                _LOGS.remove(self._runner.get_loop())
                self._runner.close()
            self._runner = None
            shutil.rmtree(self._root, ignore_errors=True)

    def run(self, coro: Awaitable[T]) -> T:
        """Run `coro` on the gateway's loop (its background tasks run meanwhile)."""
        assert self._runner is not None, "use the Gateway in a `with` block"
        return self._runner.run(coro)  # type: ignore[arg-type]

    def logs(self) -> str:
        """Everything llmgate logged so far (as it would to stderr)."""
        return self._log.getvalue()

    def write_config(self, text: str) -> None:
        """Replace the config file given at start (then `reload()`)."""
        assert "LLMGATE_CONFIG" in self.env, "the gateway started without a config file"
        self._config.write_text(text)

    def reload(self) -> bool:
        """What SIGHUP does: load the config again; True when the new one is in use."""
        return self.run(self.services.reloader.reload_or_keep())

    def health(self, name: str) -> dict[str, Any]:
        """The deployment `name` as GET /health/deployments shows it (routing's state at the fake clock's time)."""
        deployments = self.get("/health/deployments").json()["deployments"]
        return next(d for d in deployments if d["name"] == name)

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        return self.run(self.send(method, path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    async def send(self, method: str, path: str, *, json: Any = None, content: bytes | Iterable[bytes] = b"",
                   headers: Mapping[str, str] | None = None, auth: bool = True,
                   leave: Leave | None = None) -> Response:
        """One request through ASGI; `auth`: with the master key unless `headers` say otherwise; `leave`: when
        the client goes away (see `drive`)."""
        if json is not None:
            content = jsonlib.dumps(json).encode()
            if not any(name.lower() == "content-type" for name in headers or {}):
                headers = {"content-type": "application/json", **(headers or {})}
        parts = [content] if isinstance(content, bytes) else list(content)
        length = len(content) if isinstance(content, bytes) else None
        return await drive(self.app, http_scope(method, path, {**(AUTH if auth else {}), **(headers or {})}, length),
                           parts, leave)


def http_scope(method: str, path: str, headers: Mapping[str, str], content_length: int | None = None) -> dict[str, Any]:
    """An ASGI `http` scope as a server gives it (names lower-cased, a Host unless given, the path decoded)."""
    raw = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]
    names = {name for name, _ in raw}
    if content_length is not None:
        raw.append((b"content-length", b"%d" % content_length))
    if b"host" not in names:
        raw.append((b"host", b"127.0.0.1"))
    raw_path, _, query = path.partition("?")
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": unquote(raw_path), "raw_path": raw_path.encode(), "query_string": query.encode(),
            "root_path": "", "headers": raw, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080)}


Leave = Callable[[Response], bool] | Awaitable[object]
"""The client leaves once this returns true for the response so far (asked at each message), or once this
awaitable is done."""


async def drive(app: Any, scope: dict[str, Any], parts: list[bytes], leave: Leave | None = None) -> Response:
    """Serve one request with `app`, as a server would: the body in `parts`, then `http.disconnect` once the
    client has left (or the response is complete); what is sent after the client left is dropped."""
    response = Response()
    left = asyncio.Event()
    body = list(parts) or [b""]

    async def receive() -> dict[str, Any]:
        if body and not left.is_set():
            chunk = body.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(body)}
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if left.is_set():
            return
        if message["type"] == "http.response.start":
            assert response.status_code == 0, "the response started twice"
            response.status_code = message["status"]
            response.headers = httpx.Headers(message.get("headers", []))
        elif message["type"] == "http.response.body":
            assert response.status_code, "a body before the response started"
            response.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                response.complete = True
                left.set()
        if callable(leave) and leave(response):
            left.set()

    async def leave_when(done: Awaitable[object]) -> None:
        await done
        left.set()

    waiting = asyncio.ensure_future(leave_when(leave)) if leave is not None and not callable(leave) else None
    try:
        await app(scope, receive, send)
    finally:
        if waiting is not None:
            waiting.cancel()
    return response


def serve_http(gateway: Gateway, request: Any, response_type: Any) -> Any:
    """An httpx (or httpx2) request served by `gateway` through ASGI: the whole response, then returned."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw}
    content: bytes | list[bytes]
    if "content-length" in headers or request.method in ("GET", "HEAD", "DELETE"):
        content = request.read()
        headers.pop("content-length", None)  # set again from the body
    else:  # a body streamed up (no length): sent as it comes, one message a chunk
        content = list(request.stream)
    path = request.url.raw_path.decode("latin-1")
    response = gateway.request(request.method, path, content=content, headers=headers, auth=False)
    return response_type(response.status_code, headers=response.headers.raw, content=response.content,
                         request=request)


class Transport(httpx.BaseTransport):
    """httpx's way in (the OpenAI SDK's `http_client`)."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return serve_http(self._gateway, request, httpx.Response)  # type: ignore[no-any-return]


class Transport2(httpx2.BaseTransport):
    """httpx2's way in (the Anthropic SDK's `http_client`)."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return serve_http(self._gateway, request, httpx2.Response)  # type: ignore[no-any-return]
