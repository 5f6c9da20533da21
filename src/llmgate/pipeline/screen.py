"""The cheap refusals, before anything is read: a Host header missing, repeated or no host name, and load shedding.

Shedding: while the event loop lags past `LLMGATE_SHED_LAG_MS`, a request gets 503 with `retry-after` at once.
A request arriving on a loop that is already behind waits for everything queued before its handler even runs;
under sustained overload that queue (and every client's latency) grows without bound. Answering 503 costs the
loop almost nothing and lets clients (the OpenAI and Anthropic SDKs retry 503s) or a load balancer go
elsewhere. The lag is the monitor's latest sample (observe/lag.py, every 100 ms): the check is one comparison.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from llmgate.errors import InvalidRequest, Overloaded
from llmgate.proxy.headers import valid_host

if TYPE_CHECKING:
    from llmgate.config import ServerConfig
    from llmgate.pipeline.request import V1Request

RETRY_AFTER_S = 1
"""What a shed request is told to wait: the lag monitor samples every 100 ms, so a second sees a fresh state."""


def shed_after_s(server: ServerConfig) -> float:
    """The lag (seconds) past which requests are shed; infinity when shedding is off."""
    return server.shed_lag_ms / 1000 if server.shed_lag_ms > 0 else math.inf


def screen(request: V1Request, max_lag_s: float) -> None:
    """400 for a Host header missing, repeated or no host name; 503 with `retry-after` while the loop is behind."""
    inbound = request.inbound
    if inbound.hosts != 1 or not inbound.host or not valid_host(inbound.host):
        check_host(request)
    lag_s = request.exchange.lag_s
    if lag_s > max_lag_s:
        raise Overloaded(f"The gateway is overloaded (its event loop is {lag_s * 1000:.0f} ms behind); "
                         "retry shortly.", headers={"retry-after": str(RETRY_AFTER_S)})


def check_host(request: V1Request) -> None:
    """RFC 9112 §3.2: an HTTP/1.1 request with no Host header (granian then gives an empty one), or with more than
    one, gets 400 (a proxy in front and llmgate could otherwise each read a different one); HTTP/1.0 may leave it
    out, HTTP/2 sends `:authority`."""
    inbound = request.inbound
    if inbound.hosts > 1:
        raise InvalidRequest("The request has more than one Host header.")
    if not inbound.host and request.scope.get("http_version") == "1.1":
        raise InvalidRequest("The request has no Host header; HTTP/1.1 requires one.")
    if not valid_host(inbound.host):
        raise InvalidRequest("The Host header is not a valid host name.")
