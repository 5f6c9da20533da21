"""Load shedding: while the event loop lags past `LLMGATE_SHED_LAG_MS`, `/v1` requests get 503 at once.

A request arriving on a loop that is already behind waits for everything queued before its handler even runs;
under sustained overload that queue (and every client's latency) grows without bound. Answering 503 with
`retry-after` costs the loop almost nothing and lets clients (the OpenAI and Anthropic SDKs retry 503s) or a
load balancer go elsewhere. The lag is the monitor's latest sample (observe/lag.py, every 100 ms), so the check
is one float comparison.
"""

from __future__ import annotations

import math

from llmgate.config import ServerConfig
from llmgate.errors import Overloaded
from llmgate.proxy.asgi import Send, send_error
from llmgate.routes.anthropic import send_anthropic_error
from llmgate.usage.event import Exchange

RETRY_AFTER_S = 1
"""What a shed request is told to wait: the lag monitor samples every 100 ms, so a second sees a fresh state."""


def shed_after_s(server: ServerConfig) -> float:
    """The lag (seconds) past which requests are shed; infinity when shedding is off."""
    return server.shed_lag_ms / 1000 if server.shed_lag_ms > 0 else math.inf


async def shed(send: Send, exchange: Exchange, anthropic: bool) -> None:
    """Answer 503 with `retry-after`, in Anthropic's error format on the /v1/messages routes."""
    error = Overloaded(f"The gateway is overloaded (its event loop is {exchange.lag_s * 1000:.0f} ms behind); "
                       "retry shortly.", headers={"retry-after": str(RETRY_AFTER_S)})
    exchange.status, exchange.error = error.status, error.code
    await (send_anthropic_error if anthropic else send_error)(send, error, exchange.request_id)
