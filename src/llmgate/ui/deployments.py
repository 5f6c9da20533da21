"""/ui/deployments: each deployment's health, breaker (and when it half-opens) and keys (masked), as this worker
sees them (GET /health/deployments' data); the page refreshes itself every few seconds with htmx."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from llmgate.routing.health import deployments_health
from llmgate.services import Services
from llmgate.ui.render import page


class DeploymentsPage(Controller):
    path = "/"

    @get("/deployments")
    async def deployments(self, request: Request[Any, Any, Any], gateway: Services) -> Response[Any]:
        upstreams = gateway.upstreams
        return page(request, "deployments.html", deployments=deployments_health(upstreams.table, upstreams.clock()),
                    reloads=gateway.reloader.count)
