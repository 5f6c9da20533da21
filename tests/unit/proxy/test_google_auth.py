"""Vertex AI access tokens (proxy/google_auth.py) against a local token endpoint: one exchange while a token is
good, a refresh ahead of expiry that no request waits for, failures said once a token is needed; and without a
key file, the metadata server's token."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from llmgate.proxy.google_auth import REFRESH_AHEAD_S, AccessTokens, CredentialsError
from tests.google_token_endpoint import TokenEndpoint, service_account


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def endpoint(key: rsa.RSAPrivateKey) -> Iterator[TokenEndpoint]:
    served = TokenEndpoint(key.public_key())
    yield served
    served.close()


def test_a_token_is_cached_and_refreshed_ahead_of_expiry_in_the_background(
        tmp_path: Path, key: rsa.RSAPrivateKey, endpoint: TokenEndpoint) -> None:
    clock = Clock()
    tokens = AccessTokens("vertex", str(service_account(tmp_path, key, endpoint.url)), clock)

    async def scenario() -> None:
        first = await tokens.header()  # nothing yet: this one waits for the exchange
        assert first[0] == "authorization" and first[1].removeprefix("Bearer ") in endpoint.issued
        assert await tokens.header() == first and len(endpoint.issued) == 1
        clock.now += 3599 - REFRESH_AHEAD_S + 1  # still good, but soon not
        pending = tokens.header()
        assert await asyncio.wait_for(pending, 0.05) == first  # answered at once with the current token
        assert tokens._refreshing is not None
        await tokens._refreshing  # the refresh goes on meanwhile, in a thread
        second = await tokens.header()
        assert second != first and len(endpoint.issued) == 2

    asyncio.run(scenario())


def test_no_token_to_be_had_fails_the_request_and_says_why(tmp_path: Path, key: rsa.RSAPrivateKey,
                                                           endpoint: TokenEndpoint) -> None:
    endpoint.refuse = True
    tokens = AccessTokens("vertex", str(service_account(tmp_path, key, endpoint.url)), Clock())
    with pytest.raises(CredentialsError, match="could not obtain an access token for provider 'vertex'"):
        asyncio.run(tokens.header())
    missing = AccessTokens("vertex", str(tmp_path / "nowhere.json"), Clock())
    with pytest.raises(CredentialsError):
        asyncio.run(missing.header())


class MetadataServer:
    """The GCE metadata server as google-auth asks it for a default service account's token."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.asked.append(self.path)
                if self.headers.get("metadata-flavor") != "Google":
                    self._answer(403, "text/plain", b"Missing Metadata-Flavor:Google header.")
                elif "/service-accounts/default/?recursive=true" in self.path:
                    self._answer(200, "application/json", json.dumps(
                        {"email": "wi@p.iam.gserviceaccount.com", "scopes": ["x"]}).encode())
                elif "/token" in self.path and "cloud-platform" in self.path:
                    self._answer(200, "application/json", json.dumps(
                        {"access_token": "ya29.metadata", "expires_in": 3599, "token_type": "Bearer"}).encode())
                else:
                    self._answer(404, "text/plain", b"not here")

            do_POST = do_GET

            def _answer(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("metadata-flavor", "Google")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


def test_without_a_key_file_the_metadata_server_gives_the_token() -> None:
    metadata = MetadataServer()
    try:
        code = ("import asyncio; from llmgate.proxy.google_auth import AccessTokens; "
                "print(asyncio.run(AccessTokens('vertex', '').header())[1])")
        # google-auth reads GCE_METADATA_HOST when it is imported: a process of its own
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "GCE_METADATA_HOST": metadata.host})
        assert out.stdout.strip() == "Bearer ya29.metadata", out.stderr
        assert any("/token" in path for path in metadata.asked)
    finally:
        metadata.http.shutdown()
        metadata.http.server_close()
