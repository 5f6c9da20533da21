"""AWS SigV4 signing at the transport: a Bedrock provider's upstream client signs each request just before it
goes out, with the standard AWS credential chain (botocore's: environment, shared config/profile, container or
instance role) and the signer of AWS's common runtime (awscrt: the SigV4 of the AWS SDKs in C, which botocore
itself uses when installed with it). The request waits for its signature before its first byte goes up, and
botocore's signer spends several times longer in Python building the canonical request than the C one does.

botocore is synchronous and its credential providers do I/O (files, the instance metadata service, STS), so
credentials are resolved and refreshed in a worker thread, never on the event loop, and kept frozen between
refreshes: signing itself is a few HMACs over the request line, three headers and the body's hash. Only
`host`, `content-type` and `x-amz-date` (and the session token) are signed; the caller's other headers go up
unsigned, as AWS allows, so nothing on the way can break the signature by adding one.

botocore and awscrt are imported only when a Bedrock provider is configured, and then in a worker thread as the
client opens (botocore's import takes a second or more: on the event loop it would stall every request in
flight), with the credentials resolved right after, so that the first request finds all ready.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import io
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loguru import logger

from llmgate.config import ProviderConfig
from llmgate.errors import GatewayError
from llmgate.proxy.client import Body, Headers, RawHeaders, StreamedReply, UpstreamClient

if TYPE_CHECKING:
    from botocore.credentials import Credentials

SERVICE = "bedrock"
"""bedrock-runtime's SigV4 signing name."""
_SIGNED_BY_US = frozenset(("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "host"))
_SIGNED_BY_CRT = frozenset(("authorization", "x-amz-date", "x-amz-security-token"))
"""The headers the signature adds (host and content-type are signed, but the HTTP client sends them)."""


class MissingCredentials(GatewayError):
    """No AWS credentials: the gateway's configuration, not the caller's request, is at fault."""

    status, type, code = 500, "server_error", "missing_upstream_credentials"


class AwsCredentials:
    """The AWS credential chain of one provider, resolved in a thread and cached frozen until botocore says a
    refresh is due (credentials that expire: a role's, SSO's, a container's)."""

    def __init__(self, provider: str, resolve: Callable[[], Credentials | None] | None = None) -> None:
        self.provider = provider
        self._resolve = resolve or _default_chain
        self._source: Credentials | None = None
        self._frozen: Any = None
        self._lock = asyncio.Lock()

    def _is_fresh(self) -> bool:
        if self._frozen is None:
            return False
        refresh_needed = getattr(self._source, "refresh_needed", None)
        return refresh_needed is None or not refresh_needed()

    async def current(self) -> Any:
        """Frozen credentials (`access_key`, `secret_key`, `token`); resolved or refreshed in a thread when due."""
        if self._is_fresh():
            return self._frozen
        async with self._lock:  # one resolution at a time; the requests waiting share its result
            if not self._is_fresh():
                self._frozen = await asyncio.to_thread(self._load)
        return self._frozen

    def _load(self) -> Any:
        import_botocore()  # here, in the worker thread, should a request come before the client's warm-up
        source = self._source or self._resolve()
        if source is None:
            raise MissingCredentials(
                f"No AWS credentials for the provider `{self.provider}`: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with a role.")
        self._source = source
        frozen = source.get_frozen_credentials()  # a refreshable source refreshes here, off the loop
        logger.debug("AWS credentials for {} resolved ({})", self.provider, getattr(source, "method", "?"))
        return frozen


def import_botocore() -> None:
    """Import what the credential chain, signing and ConverseStream decoding use (slow: call it in a worker
    thread)."""
    for module in ("awscrt.auth", "awscrt.http", "botocore.session", "llmgate.pipeline.bedrock"):
        importlib.import_module(module)


def _default_chain() -> Credentials | None:
    import botocore.session

    credentials: Credentials | None = botocore.session.get_session().get_credentials()
    return credentials


class Signer:
    """Signs requests for one provider with awscrt's SigV4 (AWS's C implementation): one credentials provider
    per set of frozen credentials, one signing configuration per second (its time stamp), reused until they
    change."""

    def __init__(self, provider: ProviderConfig, credentials: AwsCredentials) -> None:
        self.region = provider.region
        self.credentials = credentials
        self._for: Any = None
        self._static: Any = None
        self._config: Any = None
        self._second = 0

    def _signing_config(self, frozen: Any) -> Any:
        from awscrt.auth import AwsCredentialsProvider, AwsSigningConfig

        if frozen is not self._for:
            self._static = AwsCredentialsProvider.new_static(frozen.access_key, frozen.secret_key, frozen.token)
            self._for, self._config = frozen, None
        now = time.time()
        if self._config is None or int(now) != self._second:  # x-amz-date has a resolution of one second
            self._second = int(now)
            self._config = AwsSigningConfig(credentials_provider=self._static, region=self.region, service=SERVICE,
                                            date=datetime.datetime.fromtimestamp(self._second, datetime.UTC))
        return self._config

    async def sign(self, method: str, url: str, headers: Headers, body: bytes) -> Headers:
        """`headers` (any x-amz-*/authorization of the caller's removed) plus the signature's headers."""
        frozen = await self.credentials.current()  # awscrt is imported once this has returned
        from awscrt.auth import aws_sign_request
        from awscrt.http import HttpHeaders, HttpRequest

        host, target = _host_and_target(url)
        content_type = next((v for k, v in headers if k == "content-type"), "application/json")
        request = HttpRequest(method, target, HttpHeaders([("host", host), ("content-type", content_type)]),
                              io.BytesIO(body))
        signing = aws_sign_request(request, self._signing_config(frozen))
        if not signing.done():  # static credentials: signed within the call, so this does not wait
            await asyncio.wrap_future(signing)
        signing.result()
        signed = [(name.lower(), value) for name, value in request.headers if name.lower() in _SIGNED_BY_CRT]
        return [(k, v) for k, v in headers if k not in _SIGNED_BY_US] + signed


def _host_and_target(url: str) -> tuple[str, str]:
    """`url`'s host header (the scheme's default port left out, as HTTP clients send it) and its path with the
    query."""
    parts = urlsplit(url)
    host = parts.netloc
    default = ":443" if parts.scheme == "https" else ":80"
    if host.endswith(default):
        host = host[:-len(default)]
    return host, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class SigningClient(UpstreamClient):
    """An UpstreamClient that signs every request with SigV4 before the wrapped client sends it."""

    def __init__(self, inner: UpstreamClient, signer: Signer) -> None:  # the pools are the inner client's
        self.provider = inner.provider
        self.base_url = inner.base_url
        self.inner = inner
        self.signer = signer
        self._warming: asyncio.Future[None] | None = None

    async def open(self) -> None:
        await self.inner.open()
        self._warming = asyncio.ensure_future(self._warm())

    async def _warm(self) -> None:
        """botocore imported and the credentials resolved in worker threads, before the first request."""
        await asyncio.to_thread(import_botocore)
        try:
            await self.signer.credentials.current()
        except Exception as exc:  # the first request tries again, and its caller is told why
            logger.warning("AWS credentials for provider {} not found yet: {}", self.provider.name, exc)

    async def close(self) -> None:
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
        await self.inner.close()

    async def fetch(self, method: str, path: str, headers: Headers, body: Body) -> tuple[int, RawHeaders, bytes]:
        assert isinstance(body, bytes), "a signed request's body is hashed: it cannot stream up"
        signed = await self.signer.sign(method, self.base_url + path, headers, body)
        return await self.inner.fetch(method, path, signed, body)

    def stream(self, method: str, path: str, headers: Headers, body: Body) -> StreamedReply:
        assert isinstance(body, bytes), "a signed request's body is hashed: it cannot stream up"
        return SignedReply(self, method, path, headers, body)


class SignedReply(StreamedReply):
    """The wrapped client's streamed reply, its request signed when it is entered (signing may wait for
    credentials)."""

    __slots__ = ("_client", "_inner", "_request_args")

    def __init__(self, client: SigningClient, method: str, path: str, headers: Headers, body: bytes) -> None:
        self._client = client
        self._request_args = (method, path, headers, body)
        self._inner: StreamedReply | None = None
        self.status = 0

    async def __aenter__(self) -> StreamedReply:
        method, path, headers, body = self._request_args
        client = self._client
        signed = await client.signer.sign(method, client.base_url + path, headers, body)
        inner = self._inner = client.inner.stream(method, path, signed, body)
        await inner.__aenter__()
        self.status = inner.status
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._inner is not None:
            await self._inner.__aexit__(exc_type, exc, tb)

    def raw_headers(self) -> RawHeaders:
        assert self._inner is not None
        return self._inner.raw_headers()

    async def read(self) -> bytes:
        assert self._inner is not None
        return await self._inner.read()

    def ended(self) -> bool:
        assert self._inner is not None
        return self._inner.ended()

    async def next_chunk(self) -> bytes:
        assert self._inner is not None
        return await self._inner.next_chunk()


def signing_clients(factory: Callable[[ProviderConfig], UpstreamClient],
                    resolve: Callable[[], Credentials | None] | None = None,
                    ) -> Callable[[ProviderConfig], UpstreamClient]:
    """`factory`, with the clients of `bedrock` providers signing their requests (`resolve`: the credential
    chain, botocore's default one unless a test gives its own)."""

    def new_client(provider: ProviderConfig) -> UpstreamClient:
        client = factory(provider)
        if provider.kind != "bedrock":
            return client
        return SigningClient(client, Signer(provider, AwsCredentials(provider.name, resolve)))

    return new_client
