"""Build each dialect's SSE stream for a whole response, and fold a translated stream back into a response."""

from __future__ import annotations

import itertools
import json
from typing import Any

from llmgate.translate.sse import SSEParser

Json = dict[str, Any]


def pieces(value: str, cuts: list[int]) -> list[str]:
    """`value` cut at the given offsets (taken modulo its length): how a model streams it."""
    points = sorted({c % (len(value) + 1) for c in cuts} | {0, len(value)})
    return [value[a:b] for a, b in itertools.pairwise(points)] or [""]


def _event(data: Json) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def anthropic_sse(message: Json, cuts: list[int]) -> bytes:
    """The Messages API stream for `message`, as the real API sends it (ping included)."""
    start = {**message, "content": [], "stop_reason": None,
             "usage": {"input_tokens": message["usage"]["input_tokens"], "output_tokens": 1}}
    out = [_event({"type": "message_start", "message": start}), _event({"type": "ping"})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            out.append(_event({"type": "content_block_start", "index": index,
                               "content_block": {"type": "text", "text": ""}}))
            out += [_event({"type": "content_block_delta", "index": index,
                            "delta": {"type": "text_delta", "text": p}}) for p in pieces(block["text"], cuts)]
        else:
            out.append(_event({"type": "content_block_start", "index": index,
                               "content_block": {**block, "input": {}}}))
            partial = json.dumps(block["input"], ensure_ascii=False)
            out += [_event({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": p}})
                    for p in ["", *pieces(partial, cuts)]]
        out.append(_event({"type": "content_block_stop", "index": index}))
    out.append(_event({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                                          "stop_sequence": None},
                       "usage": {"output_tokens": message["usage"]["output_tokens"]}}))
    out.append(_event({"type": "message_stop"}))
    return b"".join(out)


def openai_sse(completion: Json, cuts: list[int]) -> bytes:
    """The chat completions stream for `completion`, with the usage chunk of stream_options.include_usage."""
    base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: Json, finish: str | None = None) -> bytes:
        data = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"

    out = [chunk({"role": "assistant", "content": ""})]
    if message["content"]:
        out += [chunk({"content": p}) for p in pieces(message["content"], cuts)]
    for index, call in enumerate(message.get("tool_calls") or ()):
        out.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                          "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        out += [chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
                for p in pieces(call["function"]["arguments"], cuts)]
    out.append(chunk({}, choice["finish_reason"]))
    out.append(b"data: " + json.dumps({**base, "choices": [], "usage": completion["usage"]}).encode() + b"\n\n")
    return b"".join(out) + b"data: [DONE]\n\n"


def fold_openai_chunks(sse: bytes) -> Json:
    """Rebuild a chat.completion from its chunk stream, the way the OpenAI SDK accumulates one."""
    events = SSEParser().feed(sse)
    assert events[-1].data == "[DONE]", events[-1]
    content, calls, finish, usage, head = "", [], None, None, None
    for event in events[:-1]:
        chunk = json.loads(event.data)
        head = head or chunk
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                if call["index"] == len(calls):
                    calls.append({"id": call["id"], "type": "function",
                                  "function": {"name": call["function"]["name"], "arguments": ""}})
                calls[call["index"]]["function"]["arguments"] += call["function"].get("arguments", "")
            finish = choice["finish_reason"] or finish
    message: Json = {"role": "assistant", "content": content if content or not calls else None, "refusal": None}
    for call in calls:  # the same arguments, however the upstream spaced its JSON
        call["function"]["arguments"] = json.dumps(json.loads(call["function"]["arguments"]), ensure_ascii=False,
                                                   separators=(",", ":"))
    if calls:
        message["tool_calls"] = calls
    assert head is not None
    return {"id": head["id"], "object": "chat.completion", "created": head["created"], "model": head["model"],
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage}


def fold_anthropic_events(sse: bytes) -> Json:
    """Rebuild an Anthropic message from its event stream, checking the order and indices on the way."""
    events = [(e.event, json.loads(e.data)) for e in SSEParser().feed(sse)]
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"], names
    assert all(name == data["type"] for name, data in events)
    message = events[0][1]["message"]
    blocks: list[Json] = []
    partial: dict[int, str] = {}
    open_index = None
    for name, data in events[1:-2]:
        if name == "content_block_start":
            assert open_index is None and data["index"] == len(blocks)
            open_index = data["index"]
            blocks.append(dict(data["content_block"]))
        elif name == "content_block_delta":
            assert data["index"] == open_index
            delta = data["delta"]
            if delta["type"] == "text_delta":
                blocks[open_index]["text"] += delta["text"]
            else:
                partial[open_index] = partial.get(open_index, "") + delta["partial_json"]
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
    assert open_index is None
    for index, raw in partial.items():
        blocks[index]["input"] = json.loads(raw)
    final = events[-2][1]
    return {**message, "content": blocks, "stop_reason": final["delta"]["stop_reason"],
            "usage": {**message["usage"], **final["usage"]}}
