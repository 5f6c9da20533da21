"""The bus's build step: provider usage kept, missing usage estimated, cost priced by alias or upstream model."""

from __future__ import annotations

import json

import pytest

from llmgate.usage.account import EventBuilder
from llmgate.usage.counting import count_chat_prompt_tokens, count_text_tokens
from llmgate.usage.event import Exchange
from llmgate.usage.meter import UsageMeter
from llmgate.usage.prices import Price, upstream_model
from tests import upstream_double as double

PRICES = {"gpt-4o-mini": Price(input_per_mtok=0.15, output_per_mtok=0.6), "up-*": Price(input_per_mtok=1e6)}
MESSAGES = [{"role": "user", "content": "hello"}]


def exchange(body: bytes | None, *, stream_chunks: list[bytes] | None = None, status: int = 200,
             model: str = "gpt-4o-mini", deployment: str | None = "openai/gpt-4o-mini") -> Exchange:
    ex = Exchange(b"req-1", "POST", "/v1/chat/completions")
    ex.status, ex.model, ex.deployment, ex.ended_at = status, model, deployment, ex.started_at + 0.01
    ex.request_body = json.dumps({"model": model, "messages": MESSAGES}).encode()
    ex.meter = UsageMeter(keep_all=stream_chunks is not None)
    if body is not None:
        ex.meter.whole(body)
    for chunk in stream_chunks or ():
        ex.meter.feed(chunk)
    return ex


def test_provider_usage_is_kept_and_priced() -> None:
    event = EventBuilder(lambda: PRICES)(exchange(double.chat_body("gpt-4o-mini")))
    assert (event.prompt_tokens, event.completion_tokens, event.total_tokens, event.estimated) == (11, 24, 35, False)
    assert event.cost == pytest.approx((11 * 0.15 + 24 * 0.6) / 1e6)


def test_missing_usage_is_estimated_and_marked() -> None:
    head, deltas, tail = double.chat_frames("gpt-4o-mini", 4, False)
    builder = EventBuilder(lambda: PRICES)
    event = builder(exchange(None, stream_chunks=[head, *deltas, tail]))
    assert event.estimated is True and builder.estimated == 1
    assert event.prompt_tokens == count_chat_prompt_tokens(MESSAGES, "gpt-4o-mini")
    assert event.completion_tokens == count_text_tokens("tok0 tok1 tok2 tok3 ", "gpt-4o-mini")
    assert event.cost is not None


def test_failed_requests_are_neither_estimated_nor_priced() -> None:
    event = EventBuilder(lambda: PRICES)(exchange(None, status=502))
    assert event.total_tokens is None and event.cost is None and not event.estimated


def test_price_by_upstream_model_when_the_alias_has_none_and_reload_changes_prices() -> None:
    prices = {"now": PRICES}
    builder = EventBuilder(lambda: prices["now"])
    event = builder(exchange(double.chat_body("x"), model="my-alias", deployment="openai/up-model"))
    assert event.cost == pytest.approx(11.0)  # 11 prompt tokens at 1e6 per million
    prices["now"] = {}
    assert builder(exchange(double.chat_body("x"), model="my-alias", deployment="openai/up-model")).cost is None


def test_upstream_model_of_a_deployment() -> None:
    assert upstream_model("openai/gpt-4o") == "gpt-4o"
    assert upstream_model("azure/org/model") == "org/model"
    assert upstream_model("openai") is None
    assert upstream_model(None) is None


def test_prepare_loads_in_a_thread_only_the_encodings_estimates_need(monkeypatch: pytest.MonkeyPatch) -> None:
    """tiktoken is not loaded at start-up: `prepare` loads an encoding, off the event loop, the first time a
    batch holds an answer without usage, and never for answers that report it."""
    import asyncio

    from llmgate.usage import account, counting

    loaded_in_thread: list[str] = []

    async def to_thread(function, *args):  # type: ignore[no-untyped-def]
        assert function is counting.encoding_for_model
        loaded_in_thread.extend(args)
        return function(*args)

    monkeypatch.setattr(account.asyncio, "to_thread", to_thread)
    monkeypatch.setattr(counting, "encoding_is_loaded", lambda model: False)
    builder = EventBuilder(lambda: PRICES)
    reported = exchange(double.chat_body("gpt-4o-mini"))
    head, deltas, tail = double.chat_frames("gpt-4", 2, False)
    unreported = exchange(None, stream_chunks=[head, *deltas, tail], model="gpt-4")
    failed = exchange(None, status=502)

    asyncio.run(builder.prepare([reported, failed]))
    assert loaded_in_thread == []
    asyncio.run(builder.prepare([reported, unreported, failed]))
    assert loaded_in_thread == ["gpt-4"]
    assert builder(unreported).estimated is True


def test_an_encodings_python_ranks_are_released_once_loaded() -> None:
    from llmgate.usage.counting import encoding_for_model

    encoding = encoding_for_model("gpt-4o")
    assert encoding._mergeable_ranks == {}  # the Rust core holds its own copy
    assert encoding.decode(encoding.encode("hello world")) == "hello world"
