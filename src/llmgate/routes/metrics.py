"""`GET /metrics`: Prometheus text format; `Authorization: Bearer $LLMGATE_METRICS_TOKEN` when that is set."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST

from llmgate.errors import Unauthorized
from llmgate.services import Services


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics(gateway: Services, request: Request[Any, Any, Any]) -> Response[bytes]:
    """This worker's state sampled now, then every metric (of every worker, with several)."""
    expected = gateway.settings.metrics_token
    if expected:
        header = request.headers.get("authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("GET /metrics needs 'Authorization: Bearer <LLMGATE_METRICS_TOKEN>'.",
                               headers={"www-authenticate": "Bearer"})
    gateway.sampler.sample()
    return Response(gateway.metrics.render(), media_type=CONTENT_TYPE_LATEST)
