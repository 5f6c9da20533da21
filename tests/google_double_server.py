"""The Gemini API / Vertex AI double (tests/google_double.py) over real HTTP, with its own OAuth 2 token endpoint
(tests/google_token_endpoint.py) in the same process, so that Vertex's bearer tokens are those it issued.

Served by granian as an app factory: `python -m granian --interface asgi --factory tests.google_double_server:app`.
The service account's public key is read from the PEM file named by GOOGLE_DOUBLE_PUBLIC_KEY (no Vertex without
it). `GET /_seen` answers `{"token_uri": ..., "requests": n}`: where to point a service account's `token_uri`.
`run_google_double()` starts it in a subprocess and yields its base URL and token URI.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from tests.google_double import GoogleDouble
from tests.inprocess.upstream import Sent

Message = dict[str, Any]
ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]
PUBLIC_KEY_ENV = "GOOGLE_DOUBLE_PUBLIC_KEY"


def app() -> ASGIApp:
    """The ASGI app (a factory: the token endpoint's thread starts in the server's worker)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from tests.google_token_endpoint import TokenEndpoint

    endpoint = None
    if path := os.environ.get(PUBLIC_KEY_ENV):
        public_key = load_pem_public_key(open(path, "rb").read())  # noqa: SIM115 - read once at start-up
        assert isinstance(public_key, rsa.RSAPublicKey)
        endpoint = TokenEndpoint(public_key)
    double = GoogleDouble(tokens=endpoint.issued if endpoint is not None else None)
    seen = {"token_uri": endpoint.url if endpoint is not None else None}

    async def serve(scope: dict[str, Any], receive: Callable[[], Awaitable[Message]],
                    send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/_seen":
            answer = json.dumps({**seen, "requests": len(double.seen)}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            return await send({"type": "http.response.body", "body": answer})
        double.seen.clear()  # nothing reads them here: keep the process' memory flat over a benchmark
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        query = scope.get("query_string", b"").decode("latin-1")
        url = "http://double" + (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        reply = double(Sent("google", scope["method"], url + (f"?{query}" if query else ""), headers, body, True))
        await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
        parts = [reply.body] if isinstance(reply.body, bytes) else list(reply.body)  # type: ignore[arg-type]
        for n, part in enumerate(parts):
            assert isinstance(part, bytes), "the double's answers here are bytes only"
            await send({"type": "http.response.body", "body": part, "more_body": n < len(parts) - 1})

    return serve


@contextlib.contextmanager
def run_google_double(public_key_pem: str | None = None) -> Iterator[tuple[str, str | None]]:
    """Serve the double with granian on 127.0.0.1 (a free port) in a subprocess; yield (base URL, token URI)."""
    import httpx

    from tests.upstream_double import _answers, _stderr, free_port, importable_env, stop_process

    port = free_port()
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port",
           str(port), "--no-log", "tests.google_double_server:app"]
    env = importable_env({**os.environ, **({PUBLIC_KEY_ENV: public_key_pem} if public_key_pem else {})})
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while not _answers(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Google double did not start:\n{_stderr(err)}")
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port}"
            yield base, httpx.get(f"{base}/_seen").json()["token_uri"]
        finally:
            stop_process(proc)
