"""ConverseStream's binary event stream → OpenAI chunks: the same answer however the bytes are split, agreeing
with the whole response's translation; exceptions, truncation and corruption end the stream with an error."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmgate.translate.converse import chat_completion
from llmgate.translate.converse_stream import OpenAIChunksFromConverse
from tests.bedrock_double import event, exception
from tests.unit.translate.streams import fold_openai_chunks, pieces
from tests.unit.translate.test_converse import converse_blocks, stop_reasons, usages
from tests.unit.translate.test_translation_properties import cuts, split, splits

Json = dict[str, Any]


def converse_stream(blocks: list[Json], stop: str, usage: Json, text_cuts: list[int]) -> bytes:
    """The ConverseStream answer for a Converse response, framed as AWS frames it."""
    frames = [event("messageStart", {"role": "assistant"})]
    for index, block in enumerate(blocks):
        if "text" in block:
            frames += [event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": p}})
                       for p in pieces(block["text"], text_cuts)]
        else:
            use = block["toolUse"]
            frames.append(event("contentBlockStart", {"contentBlockIndex": index, "start": {
                "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}}))
            frames += [event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": p}}})
                       for p in pieces(json.dumps(use["input"], ensure_ascii=False), text_cuts)]
        frames.append(event("contentBlockStop", {"contentBlockIndex": index}))
    frames.append(event("messageStop", {"stopReason": stop}))
    frames.append(event("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}))
    return b"".join(frames)


@settings(max_examples=200)
@given(converse_blocks, stop_reasons, usages, cuts, splits, st.integers(0, 2**31))
def test_stream_matches_the_whole_response_however_split(blocks: list[Json], stop: str, usage: Json,
                                                         text_cuts: list[int], points: list[int], created: int) -> None:
    stream = converse_stream(blocks, stop, usage, text_cuts)
    reported: list[Json] = []
    translator = OpenAIChunksFromConverse("meta.llama", created, include_usage=True, on_usage=reported.append)
    sse = b"".join(translator.feed(part) for part in split(stream, points)) + translator.close()
    response = {"output": {"message": {"role": "assistant", "content": blocks}}, "stopReason": stop, "usage": usage}
    expected = chat_completion(response, "meta.llama", created)
    folded = fold_openai_chunks(sse)
    assert folded == {**expected, "id": folded["id"]}
    assert reported == [expected["usage"]]


def test_without_include_usage_the_usage_is_reported_but_not_sent() -> None:
    stream = converse_stream([{"text": "hi"}], "end_turn", {"inputTokens": 3, "outputTokens": 1}, [])
    reported: list[Json] = []
    translator = OpenAIChunksFromConverse("m", 0, include_usage=False, on_usage=reported.append)
    sse = translator.feed(stream)
    assert b'"usage"' not in sse and sse.endswith(b"data: [DONE]\n\n")
    assert reported == [{"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}]
    assert translator.close() == b""


def test_each_chunk_goes_out_as_its_frame_completes() -> None:
    translator = OpenAIChunksFromConverse("m", 0, include_usage=False)
    frame = event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}})
    assert translator.feed(frame[:10]) == b""  # a partial frame waits for its end
    out = translator.feed(frame[10:])
    assert json.loads(out.removeprefix(b"data: "))["choices"][0]["delta"] == {"content": "Hel"}


def test_an_exception_event_ends_the_stream_with_an_openai_error() -> None:
    translator = OpenAIChunksFromConverse("m", 0, include_usage=True)
    out = translator.feed(event("messageStart", {"role": "assistant"}) +
                          exception("throttlingException", "Too many tokens, please wait.") +
                          event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "late"}}))
    last = json.loads(out.split(b"\n\n")[-2].removeprefix(b"data: "))
    assert last == {"error": {"message": "Too many tokens, please wait.", "type": "rate_limit_error", "param": None,
                              "code": None}}
    assert b"late" not in out and translator.close() == b""


def test_a_stream_cut_before_message_stop_ends_with_an_error() -> None:
    translator = OpenAIChunksFromConverse("m", 0, include_usage=False)
    translator.feed(event("messageStart", {"role": "assistant"}))
    assert b"ended before messageStop" in translator.close()


def test_a_stream_that_stopped_without_metadata_ends_normally() -> None:
    translator = OpenAIChunksFromConverse("m", 0, include_usage=True)
    out = translator.feed(event("messageStop", {"stopReason": "end_turn"}))
    assert json.loads(out.removeprefix(b"data: "))["choices"][0]["finish_reason"] == "stop"
    assert translator.close() == b"data: [DONE]\n\n"


def test_a_corrupted_frame_ends_the_stream_with_an_error() -> None:
    frame = bytearray(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}}))
    frame[-1] ^= 0xFF  # the message CRC no longer matches
    translator = OpenAIChunksFromConverse("m", 0, include_usage=False)
    out = translator.feed(bytes(frame))
    assert b"could not be read" in out and translator.finished
