"""Who is calling: the master key, a virtual token (whose project then pays), a JWT (its project pays, its end
user is recorded), or anyone on an open gateway."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from llmgate.access.throttle import client_address
from llmgate.errors import Unauthorized

if TYPE_CHECKING:
    from llmgate.access.authenticate import Authenticator
    from llmgate.access.throttle import AuthThrottle
    from llmgate.pipeline.request import V1Request


async def authenticate(authenticator: Authenticator, request: V1Request, throttle: AuthThrottle) -> None:
    """Set `request.entry` (a virtual token's, else None) and stamp the exchange; 401 when refused, 429 once the
    caller's address has failed too often (`throttle`). Answers from memory; only a virtual token not cached yet
    waits for the store."""
    now = time.time()
    credential = request.inbound.credential
    try:
        principal = authenticator.authenticate(credential, now)
        if principal is None:
            principal = await authenticator.load(credential or "", now)
    except Unauthorized:
        throttle.failed(client_address(request.scope), time.monotonic())
        raise
    exchange = request.exchange
    entry = request.entry = principal.entry
    if entry is not None:
        exchange.project_id, exchange.token_id = entry.project_id, entry.token_id or None
        exchange.end_user = principal.user
    exchange.auth_s = time.monotonic() - exchange.started_at
