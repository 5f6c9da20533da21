"""Property tests: what both dialects express survives a round trip; streams agree with whole responses and
translate the same however the upstream's bytes are split."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from llmgate.translate.chat_stream import AnthropicEventsFromOpenAI
from llmgate.translate.chat_to_messages import anthropic_request, chat_completion
from llmgate.translate.messages_stream import OpenAIChunksFromAnthropic
from llmgate.translate.messages_to_chat import anthropic_message, openai_request
from tests.unit.translate.strategies import (
    anthropic_messages,
    anthropic_requests,
    chat_completions,
    openai_requests,
)
from tests.unit.translate.streams import anthropic_sse, fold_anthropic_events, fold_openai_chunks, openai_sse

cuts = st.lists(st.integers(0, 200), max_size=6)
splits = st.lists(st.integers(0, 10_000), max_size=12)


def split(data: bytes, points: list[int]) -> list[bytes]:
    """`data` cut at arbitrary byte offsets: inside events, lines and multi-byte UTF-8 characters."""
    offsets = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(offsets)]


@given(openai_requests())
def test_openai_request_round_trip(request: dict) -> None:
    assert openai_request(anthropic_request(request)) == request


@given(anthropic_requests())
def test_anthropic_request_round_trip(request: dict) -> None:
    assert anthropic_request(openai_request(request)) == request


@given(anthropic_messages(), st.integers(0, 2**31))
def test_anthropic_message_round_trip(message: dict, created: int) -> None:
    assert anthropic_message(chat_completion(message, created)) == message


@given(chat_completions())
def test_chat_completion_round_trip(completion: dict) -> None:
    assert chat_completion(anthropic_message(completion), completion["created"]) == completion


@settings(max_examples=200)
@given(anthropic_messages(), cuts, splits, st.integers(0, 2**31))
def test_anthropic_stream_matches_message_however_split(message: dict, text_cuts: list[int], points: list[int],
                                                        created: int) -> None:
    sse = anthropic_sse(message, text_cuts)
    whole = OpenAIChunksFromAnthropic(message["model"], created, include_usage=True)
    expected = whole.feed(sse) + whole.close()
    pieces = OpenAIChunksFromAnthropic(message["model"], created, include_usage=True)
    assert b"".join(pieces.feed(part) for part in split(sse, points)) + pieces.close() == expected
    assert fold_openai_chunks(expected) == chat_completion(message, created)


@settings(max_examples=200)
@given(chat_completions(), cuts, splits)
def test_openai_stream_matches_completion_however_split(completion: dict, text_cuts: list[int],
                                                        points: list[int]) -> None:
    sse = openai_sse(completion, text_cuts)
    whole = AnthropicEventsFromOpenAI(completion["model"])
    expected = whole.feed(sse) + whole.close()
    pieces = AnthropicEventsFromOpenAI(completion["model"])
    assert b"".join(pieces.feed(part) for part in split(sse, points)) + pieces.close() == expected
    assert fold_anthropic_events(expected) == anthropic_message(completion)


@given(anthropic_messages(), cuts)
def test_crlf_streams_translate_like_lf(message: dict, text_cuts: list[int]) -> None:
    sse = anthropic_sse(message, text_cuts)
    lf, crlf = (OpenAIChunksFromAnthropic("m", 0, include_usage=False) for _ in range(2))
    assert crlf.feed(sse.replace(b"\n", b"\r\n")) == lf.feed(sse)
    assert json.loads(lf.close() or b"null") is None  # finished at message_stop: nothing left to say
