"""Whether a virtual token may make this request: its model, then its limits (rpm, tpm, max_requests, budgets),
its project's and its end user's, counting the request (queued for a slot when `queue_ms` says so). The master
key and an open gateway's callers have no limits here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from llmgate.access.admission import admit_request

if TYPE_CHECKING:
    from llmgate.access.tokens import TokenCache
    from llmgate.pipeline.request import V1Request
    from llmgate.pipeline.resolve import Plan

MAX_USER_CHARS = 256
"""An end-user id longer than this is cut: it is a label (usage rows, limit keys), not data."""


async def admit(tokens: TokenCache, request: V1Request, plan: Plan, user_header: str = "",
                record_users: bool = True) -> None:
    """Raise 403 (model not allowed) or 429 (a limit reached, saying which); count the request otherwise.
    Limits shared between instances are counted in Redis, and a token with a project's limits, a budget period,
    a queue or alerts goes the long way (access/admission.py): the only times this awaits. The end-user header
    is looked for when usage is recorded (`record_users`) or the project limits its end users."""
    entry = request.entry
    if user_header and record_users:
        find_end_user(request, user_header)
    if entry is not None and plan.admit == "model":
        entry.check_model(request.model)
    elif entry is not None and plan.admit == "request" and tokens.check_request(entry, request.model,
                                                                                now := tokens.clock()):
        if entry.has_extras:
            project = entry.project
            if not record_users and project is not None and project.user_limits is not None:
                find_end_user(request, user_header)
            request.exchange.queue_s = await admit_request(tokens, entry, request.user, request.receive)
        else:
            await tokens.admit_shared(entry, now)
    exchange = request.exchange
    exchange.route_s = time.monotonic() - exchange.started_at - exchange.auth_s - exchange.queue_s


def find_end_user(request: V1Request, header: str) -> None:
    """The end user: the body's `user`, else the end-user header; recorded in the exchange."""
    user = request.user
    if user is None:
        for name, value in request.inbound.forward:
            if name == header:
                user = value
                break
        else:
            return
    user = user[:MAX_USER_CHARS]
    request.user = request.exchange.end_user = user
