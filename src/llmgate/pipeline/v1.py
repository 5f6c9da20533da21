"""`/v1`: every request's steps, in order, in one place; and the one place its errors are answered.

    (trace) → screen → find the endpoint → authenticate → read → resolve → admit → (a deployment's queue)
            → [cache] forward, or answer → settle

Each step is a function of the request object and the few services it needs (pipeline/*.py, one module a
step). The dialect (OpenAI, or Anthropic on /v1/messages*) is data the request carries: the steps do not
branch on it except `resolve`, which decides between passing through and translating. A step added later
(cache, JWT, tracing) is one module and one line here.
"""

from __future__ import annotations

import asyncio
import time

from loguru import logger

from llmgate.errors import GatewayError, InternalError
from llmgate.log import current_request, new_request_id
from llmgate.observe.tracing import begin_trace
from llmgate.pipeline.admit import admit
from llmgate.pipeline.authenticate import authenticate
from llmgate.pipeline.cache import through_cache
from llmgate.pipeline.deployment_queue import queue_for_deployment
from llmgate.pipeline.dialects import send_error
from llmgate.pipeline.endpoints import build_endpoints, find_endpoint, find_routes
from llmgate.pipeline.meter import meter
from llmgate.pipeline.read import read
from llmgate.pipeline.request import V1Request, V1Services
from llmgate.pipeline.resolve import Answered, resolve
from llmgate.pipeline.screen import screen, shed_after_s
from llmgate.pipeline.settle import settle
from llmgate.proxy.asgi import ASGIApp, ClientDisconnected, Receive, Scope, Send
from llmgate.proxy.compress import gzip_send
from llmgate.proxy.deadlines import Deadlines
from llmgate.proxy.forward import forward
from llmgate.proxy.headers import split_request_headers
from llmgate.usage.event import CLIENT_CLOSED, Exchange


def serve_v1(services: V1Services) -> ASGIApp:
    """The `/v1` ASGI app; `scope["path"]` is relative to /v1."""
    endpoints = build_endpoints(services.server.extra_routes)
    max_lag_s = shed_after_s(services.server)
    max_body_bytes = services.server.max_body_bytes
    body_deadlines = Deadlines(services.server.body_timeout_s)
    lag = services.lag
    tracing = services.tracing
    auth_throttle = services.auth_throttle
    compress_min_bytes = services.server.compress_min_bytes
    # The response cache wraps the attempts (a hit is answered without them); without one, nothing is in the way.
    send_on = forward if services.cache is None else through_cache(services.cache, forward, services.upstreams)
    end_user_header = services.server.end_user_header.lower()
    record_users = services.server.usage_log  # the end user matters to the usage event, or to per-user limits

    async def v1(scope: Scope, receive: Receive, send: Send) -> None:
        inbound = split_request_headers(scope["headers"])
        path = scope["path"].rstrip("/")
        exchange = Exchange(inbound.request_id or new_request_id().encode(), scope["method"], "/v1" + path,
                            lag.lag_s)
        current_request.set(exchange)  # every line logged from here on carries the request ids
        if tracing is not None:  # continue the caller's trace or start one (observe/tracing.py)
            exchange.trace = begin_trace(inbound.forward, tracing.sampler)
        task = asyncio.current_task()
        assert task is not None
        request = V1Request(scope, receive, send, task, inbound, exchange, path, scope["method"])
        routes = find_routes(endpoints, path)
        if routes is not None:
            request.dialect = routes.dialect
        try:
            screen(request, max_lag_s)                                   # a bad Host; shed while overloaded
            endpoint = find_endpoint(routes, request.method, path)       # 404, 405
            await authenticate(services.authenticator, request, auth_throttle)  # 401; 429 past failures
            upstreams = services.upstreams()  # held for the whole request: a reload meanwhile does not change it
            upstreams.active += 1
            try:
                await read(request, endpoint, max_body_bytes, body_deadlines)  # the body (408, 413); model (400)
                if compress_min_bytes and not request.stream:            # gzip a whole answer, if accepted
                    request.send = gzip_send(request.send, request.inbound.accept_encoding, compress_min_bytes)
                plan = resolve(request, endpoint, upstreams)             # alias → deployments (404); how
                await admit(services.tokens, request, plan, end_user_header, record_users)  # 403; 429, or queued
                if isinstance(plan, Answered):
                    await plan.answer(request, upstreams)                # ours: the model list, token counts
                    return
                meter(plan, request, services.server)                    # what to count of the answer
                if plan.route.queue_ms:                                  # every deployment at its rpm/tpm: wait
                    await queue_for_deployment(plan.route, plan.call.clock, request, services.tokens)
                await send_on(plan.call, plan.route)                     # (cache,) attempts, failover, relay
                await settle(services.tokens, services.pricing, request)  # the token's tokens and cost
            finally:
                upstreams.leave()
        except GatewayError as error:
            exchange.status, exchange.error = error.status, error.code or error.type
            await send_error(send, request.dialect, error, exchange.request_id)
        except ClientDisconnected:
            exchange.status = CLIENT_CLOSED
        except Exception:
            logger.bind(request_id=exchange.request_id.decode()).exception("unexpected error")
            exchange.status, exchange.error = 500, "server_error"
            await send_error(send, request.dialect, InternalError("The gateway failed to handle the request."),
                             exchange.request_id)
        finally:
            exchange.ended_at = time.monotonic()
            services.emit(exchange)

    return v1
