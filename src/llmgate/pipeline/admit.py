"""Whether a virtual token, or a JWT caller, may make this request: its model, then its limits (rpm, tpm,
max_requests, budgets), its project's and its end user's, counting the request (queued for a slot when `queue_ms`
says so). A JWT caller has no limits of its own, only its project's. The master key and an open gateway's callers
have no limits here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from llmgate.access.admission import admit_request
from llmgate.usage.event import end_user

if TYPE_CHECKING:
    from llmgate.access.tokens import TokenCache
    from llmgate.pipeline.request import V1Request
    from llmgate.pipeline.resolve import Plan

async def admit(tokens: TokenCache, request: V1Request, plan: Plan, user_header: str = "",
                record_users: bool = True) -> None:
    """Raise 403 (model not allowed) or 429 (a limit reached, saying which); count the request otherwise.
    Limits shared between instances are counted in Redis, and a token with a project's limits, a budget period,
    a queue or alerts goes the long way (access/admission.py): the only times this awaits.

    The end user (the body's `user`, else the end-user header) is recorded for the usage event when usage is
    (`record_users`): the header is looked for later, by the event builder, off the request path; here only
    when the caller's project limits its end users (a JWT caller's user claim first), and kept in
    `request.user` for `settle`."""
    entry = request.entry
    if record_users and request.exchange.end_user is None:  # a JWT caller's own user claim wins
        if request.user is None:
            request.exchange.forwarded = request.inbound.forward
        else:
            request.exchange.end_user = request.user
    if entry is not None and plan.admit == "model":
        entry.check_model(request.model)
    elif entry is not None and plan.admit == "request" and tokens.check_request(entry, request.model,
                                                                                now := time.time()):
        if entry.has_extras:
            project = entry.project
            user = None
            if project is not None and project.user_limits is not None:
                user = request.user = limited_user(request, user_header)
            request.exchange.queue_s = await admit_request(tokens, entry, user, request.receive)
        else:
            await tokens.admit_shared(entry, now)
    exchange = request.exchange
    exchange.route_s = time.monotonic() - exchange.started_at - exchange.auth_s - exchange.queue_s


def limited_user(request: V1Request, user_header: str) -> str | None:
    """The end user whose per-user limits apply (and whom `settle` pays): a JWT caller's user claim, else the
    body's `user`, else the end-user header."""
    claimed = request.exchange.end_user if request.entry is not None and not request.entry.token_id else None
    return end_user(claimed or request.user, request.inbound.forward, user_header)
