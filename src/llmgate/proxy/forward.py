"""Send one request upstream and its answer back; the one place where upstream client errors become ours."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from loguru import logger

from llmgate.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from llmgate.log import mask_secret
from llmgate.proxy.asgi import DisconnectWatch, Receive, Send, send_response, uncancel
from llmgate.proxy.client import TRANSPORT_ERRORS, Body, UpstreamClient, is_connect_timeout, is_timeout
from llmgate.proxy.headers import downstream_headers
from llmgate.proxy.streaming import relay_stream
from llmgate.usage.meter import UsageMeter


def upstream_error(exc: BaseException, client: UpstreamClient) -> GatewayError:
    """Translate an upstream client error: timeouts → 504, anything else on the wire → 502."""
    provider = client.provider.name
    if is_connect_timeout(exc):
        return UpstreamTimeout(f"Timed out connecting to the upstream provider `{provider}`.")
    if is_timeout(exc):
        return UpstreamTimeout(f"The upstream provider `{provider}` did not answer in time.")
    # The client's message can hold the URL but never the key (it travels in a header); mask anyway.
    detail = str(exc).replace(client.provider.api_key, mask_secret(client.provider.api_key)) \
        if client.provider.api_key else str(exc)
    logger.warning("upstream {} unreachable: {}", provider, detail)
    return UpstreamUnreachable(f"Could not reach the upstream provider `{provider}`.")


async def forward(send: Send, receive: Receive, client: UpstreamClient, method: str, path: str,
                  headers: list[tuple[str, str]], body: Body, request_id: bytes, stream: bool,
                  meter: UsageMeter | None = None) -> bytes | None:
    """Forward one request; stream the answer when `stream`, else send it whole. Returns the upstream's id.

    With a `meter`, a successful response's bytes are shown to it so its token usage can be counted.
    """
    try:
        if stream:
            return await relay_stream(send, receive, client.stream(method, path, headers, body), request_id,
                                      client.provider.timeouts, watch_disconnect=isinstance(body, bytes), meter=meter)
        return await _forward_buffered(send, receive, client, method, path, headers, body, request_id, meter)
    except TRANSPORT_ERRORS as exc:
        raise upstream_error(exc, client) from exc


async def _forward_buffered(send: Send, receive: Receive, client: UpstreamClient, method: str, path: str,
                            headers: list[tuple[str, str]], body: Body, request_id: bytes,
                            meter: UsageMeter | None) -> bytes | None:
    # A body still streaming up is read from `receive` too, so a disconnect can only be watched after it.
    watch = DisconnectWatch(receive) if isinstance(body, bytes) else None
    try:
        status, upstream_headers, data = await client.fetch(method, path, headers, body)
    except asyncio.CancelledError:
        if watch is None or not watch.disconnected:
            raise
        uncancel()
        logger.debug("client disconnected while waiting; upstream request closed")
        return None
    finally:
        if watch is not None:
            watch.stop()
    down, upstream_id = downstream_headers(upstream_headers, request_id)
    await send_response(send, status, down, data)
    if meter is not None and status == 200:
        meter.whole(data)
    return upstream_id


class _ModelList(msgspec.Struct):
    data: list[dict[str, Any]]


async def fetch_model_list(client: UpstreamClient) -> list[dict[str, Any]]:
    """`GET {base_url}/models` from the provider: the model objects it lists."""
    headers = [client.auth_header] if client.auth_header else []
    try:
        status, _, data = await client.fetch("GET", "/models", headers, b"")
    except TRANSPORT_ERRORS as exc:
        raise upstream_error(exc, client) from exc
    if status != 200:
        raise UpstreamError(f"The upstream provider `{client.provider.name}` answered {status} to GET /models.")
    try:
        return msgspec.json.decode(data, type=_ModelList).data
    except msgspec.MsgspecError:
        raise UpstreamError(f"The upstream provider `{client.provider.name}` sent an unreadable model list.") from None
