"""`GET /health`: liveness for load balancers and container health checks, with the event-loop lag; no auth.
`GET /health/deployments`: each deployment's breaker and keys (masked); the master key when one is set."""

from __future__ import annotations

import hmac
import time
from typing import Any

import msgspec
from litestar import Controller, Request, get

from llmgate import __version__
from llmgate.errors import Unauthorized
from llmgate.proxy.headers import split_request_headers
from llmgate.routing.health import deployments_health
from llmgate.services import Services


class Health(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    status: str
    version: str
    uptime_s: float
    loop_lag_ms: float
    """This worker's event-loop lag, latest sample: how long a request arriving now waits for its handler."""
    loop_lag_peak_ms: float
    """The worst sample of the last ~10 s."""
    access: str
    """`open` (no credential needed on /v1) or `closed`; the start-up log says why."""
    jwks: dict[str, str] | None = None
    """Each `[[auth.jwt]]` issuer's keys: `ok`, or `stale: <why>` while its JWKS cannot be fetched and the cached
    keys serve (absent without JWT issuers)."""


class HealthController(Controller):
    path = "/health"

    @get(include_in_schema=False)
    async def health(self, gateway: Services) -> Health:
        """Status, version, uptime and event-loop lag."""
        lag = gateway.lag
        return Health(status="ok", version=__version__, uptime_s=round(time.monotonic() - gateway.started_at, 3),
                      loop_lag_ms=round(lag.lag_s * 1000, 3), loop_lag_peak_ms=round(lag.peak_s * 1000, 3),
                      access="open" if gateway.authenticator.is_open else "closed",
                      jwks=gateway.jwt.status() if gateway.jwt is not None else None)

    @get("/deployments", include_in_schema=False)
    async def deployments(self, gateway: Services, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """This worker's view of every deployment (each worker process keeps its own)."""
        # Deployment health (masked keys, error counts) is for the operator: the master key or the management
        # token, not a virtual token.
        credential = split_request_headers(request.scope["headers"]).credential
        token = gateway.settings.management_token
        if not (token and credential and hmac.compare_digest(credential.encode(), token.encode())):
            principal = gateway.authenticator.authenticate(credential, time.time())
            if principal is None or principal.kind in ("token", "jwt"):
                raise Unauthorized("GET /health/deployments needs the master key or the management token.")
        return {"reloads": gateway.reloader.count,
                "deployments": deployments_health(gateway.upstreams.table, gateway.upstreams.clock())}
