"""Whether a virtual token may make this request: its model, then its limits (rpm, tpm, max_requests, budgets),
counting the request. The master key and an open gateway's callers have no limits here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmgate.access.tokens import TokenCache
    from llmgate.pipeline.request import V1Request
    from llmgate.pipeline.resolve import Plan


async def admit(tokens: TokenCache, request: V1Request, plan: Plan) -> None:
    """Raise 403 (model not allowed) or 429 (a limit reached, saying which); count the request otherwise.
    Limits shared between instances are counted in Redis, the only time this awaits."""
    entry = request.entry
    if entry is not None and plan.admit == "model":
        entry.check_model(request.model)
    elif entry is not None and plan.admit == "request" and tokens.check_request(entry, request.model,
                                                                                now := time.time()):
        await tokens.admit_shared(entry, now)
    exchange = request.exchange
    exchange.route_s = time.monotonic() - exchange.started_at - exchange.auth_s
