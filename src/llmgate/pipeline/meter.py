"""What a request's answer is read for: its LLM tokens, for the usage log, a virtual token's budgets and
limits, or a deployment's tpm. Answers nobody needs counted stay on the zero-parse path."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from msgspec import UnsetType

from llmgate.usage.meter import UsageMeter
from llmgate.usage.tap import StreamTap, ask_for_usage

if TYPE_CHECKING:
    from llmgate.access.token_entry import TokenEntry
    from llmgate.config import ServerConfig
    from llmgate.pipeline.request import V1Request
    from llmgate.pipeline.resolve import Forwarded
    from llmgate.proxy.attempt import Call

_ASKS_FOR_USAGE = frozenset({"/chat/completions", "/completions"})
"""OpenAI streams that carry usage only when asked (`stream_options.include_usage`)."""


def meter(plan: Forwarded, request: V1Request, server: ServerConfig) -> None:
    """Set up the counting `plan`'s call needs, if any."""
    call, route = plan.call, plan.route
    entry = request.entry
    if call.translation is not None:
        if counts_usage(entry, server):
            meter_translated(request, server)
    elif (route.counts_tokens or counts_usage(entry, server)) and request.path != "/messages/count_tokens":
        meter_usage(call, server.usage_log, server.raw_log, request.stream_options)


def counts_usage(entry: TokenEntry | None, server: ServerConfig) -> bool:
    """Whether the LLM tokens of a request's answer are counted for its caller: for the usage log, or for a
    virtual token whose limits need them (or every token's, with `meter_every_token`)."""
    return server.usage_log or (entry is not None and (entry.counts_tokens or server.meter_every_token))


def meter_usage(call: Call, usage_log: bool, raw_log: bool,
                stream_options: msgspec.Raw | UnsetType | None = None) -> None:
    """Count the tokens of `call`'s answer.

    An OpenAI chat/completions stream is asked for its usage chunk, which is removed again from what the client
    receives unless it asked for it too (`stream_options`: the body's own, as decoded for routing; UNSET when
    it has none). With the usage log on, the request body and a stream's chunks are kept (to count tokens with
    tiktoken should no usage come).
    """
    exchange = call.exchange
    stream = call.stream
    raw_log = usage_log and raw_log
    meter = exchange.meter = UsageMeter(usage_log and stream, raw_log)
    body = call.body
    if usage_log and isinstance(body, bytes):
        exchange.request_body = body
        if raw_log:  # the raw body log wants the headers too (no credentials)
            exchange.request_headers = call.inbound.forward
    if not stream:
        return
    if call.path in _ASKS_FOR_USAGE and isinstance(body, bytes):
        call.usage_body = ask_for_usage(body, stream_options)
    call.tap = StreamTap(meter)


def meter_translated(request: V1Request, server: ServerConfig) -> None:
    """`meter_usage` for a translated request: the meter sees the upstream's answer, in its dialect."""
    exchange = request.exchange
    exchange.meter = UsageMeter(keep_all=server.usage_log)
    if server.usage_log:
        exchange.request_body = request.body if isinstance(request.body, bytes) else None
        if server.raw_log:
            exchange.request_headers = request.inbound.forward
