"""`GET /health`: liveness for load balancers and container health checks; no auth."""

from __future__ import annotations

import time

import msgspec
from litestar import Controller, get

from llmgate import __version__
from llmgate.state import GatewayState


class Health(msgspec.Struct, kw_only=True, frozen=True):
    status: str
    version: str
    uptime_s: float


class HealthController(Controller):
    path = "/health"

    @get(include_in_schema=False)
    async def health(self, gateway: GatewayState) -> Health:
        """Status, version and uptime."""
        return Health(status="ok", version=__version__, uptime_s=round(time.monotonic() - gateway.started_at, 3))
