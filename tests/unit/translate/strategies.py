"""Hypothesis strategies for what both dialects can express, and stream builders for the property tests."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

Json = dict[str, Any]

# any characters but surrogates and controls, multi-byte ones included (streams are split inside them)
text = st.text(st.characters(min_codepoint=32, max_codepoint=0x1FFFF, blacklist_categories=("Cs", "Cc")),
               max_size=30)
nonempty = text.filter(bool)
name = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
ident = st.from_regex(r"[A-Za-z0-9]{4,12}", fullmatch=True)
unit = st.floats(0, 1, allow_nan=False)
json_value = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | text,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(name, inner, max_size=3),
                          max_leaves=8)
arguments = st.dictionaries(name, json_value, max_size=4)
schema = st.fixed_dictionaries({"type": st.just("object"), "properties": st.dictionaries(
    name, st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "boolean"])}), max_size=3)})
b64 = st.binary(min_size=1, max_size=12).map(lambda b: __import__("base64").b64encode(b).decode())
media = st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"])
https_url = name.map(lambda n: f"https://example.com/{n}.png")


# ---- OpenAI chat requests (canonical: what survives OpenAI → Anthropic → OpenAI unchanged) ----

openai_image = st.one_of(
    st.tuples(media, b64).map(lambda t: {"type": "image_url", "image_url": {"url": f"data:{t[0]};base64,{t[1]}"}}),
    https_url.map(lambda u: {"type": "image_url", "image_url": {"url": u}}),
)
openai_user = st.fixed_dictionaries({"role": st.just("user"), "content": text | st.lists(
    st.builds(lambda t: {"type": "text", "text": t}, text) | openai_image, min_size=1, max_size=3)})


@st.composite
def openai_tool_turn(draw: st.DrawFn) -> list[Json]:
    """An assistant turn calling tools, then one tool message per call."""
    ids = draw(st.lists(ident, min_size=1, max_size=3, unique=True))
    calls = [{"id": i, "type": "function", "function": {"name": draw(name), "arguments": json.dumps(
        draw(arguments), ensure_ascii=False, separators=(",", ":"))}} for i in ids]
    assistant = {"role": "assistant", "content": draw(st.none() | nonempty), "tool_calls": calls}
    return [assistant] + [{"role": "tool", "tool_call_id": i, "content": draw(text)} for i in ids]


@st.composite
def openai_requests(draw: st.DrawFn) -> Json:
    messages: list[Json] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(nonempty)})
    for _ in range(draw(st.integers(1, 4))):
        messages.append(draw(openai_user))
        turn = draw(st.sampled_from(["text", "tools", "none"]))
        if turn == "text":
            messages.append({"role": "assistant", "content": draw(text)})
        elif turn == "tools":
            messages.extend(draw(openai_tool_turn()))
    request: Json = {"model": draw(name), "messages": messages, "max_tokens": draw(st.integers(1, 8192))}
    for key, strategy in (("temperature", unit), ("top_p", unit), ("user", name),
                          ("stop", st.lists(nonempty, min_size=1, max_size=3))):
        if draw(st.booleans()):
            request[key] = draw(strategy)
    if draw(st.booleans()):
        tools = draw(st.lists(st.tuples(name, text, schema), min_size=1, max_size=3, unique_by=lambda t: t[0]))
        request["tools"] = [{"type": "function", "function": {"name": n, **({"description": d} if d else {}),
                                                              "parameters": s}} for n, d, s in tools]
        choice = draw(st.sampled_from(["auto", "required", "none", "named", None]))
        if choice == "named":
            request["tool_choice"] = {"type": "function", "function": {"name": tools[0][0]}}
        elif choice is not None:
            request["tool_choice"] = choice
        if choice not in ("none", None) and draw(st.booleans()):
            request["parallel_tool_calls"] = False
    if draw(st.booleans()):
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


# ---- Anthropic requests (canonical: what survives Anthropic → OpenAI → Anthropic unchanged) ----

anthropic_image = st.one_of(
    st.tuples(media, b64).map(lambda t: {"type": "image", "source": {"type": "base64", "media_type": t[0],
                                                                     "data": t[1]}}),
    https_url.map(lambda u: {"type": "image", "source": {"type": "url", "url": u}}),
)
anthropic_user = st.fixed_dictionaries({"role": st.just("user"), "content": text | st.lists(
    st.builds(lambda t: {"type": "text", "text": t}, text) | anthropic_image, min_size=1, max_size=3)})


@st.composite
def anthropic_tool_turn(draw: st.DrawFn) -> list[Json]:
    ids = draw(st.lists(ident, min_size=1, max_size=3, unique=True))
    intro = draw(st.none() | nonempty)
    blocks = ([{"type": "text", "text": intro}] if intro else []) + [
        {"type": "tool_use", "id": i, "name": draw(name), "input": draw(arguments)} for i in ids]
    results = [{"type": "tool_result", "tool_use_id": i, "content": draw(text)} for i in ids]
    return [{"role": "assistant", "content": blocks}, {"role": "user", "content": results}]


@st.composite
def anthropic_requests(draw: st.DrawFn) -> Json:
    messages: list[Json] = []
    for _ in range(draw(st.integers(1, 4))):
        messages.append(draw(anthropic_user))
        turn = draw(st.sampled_from(["text", "tools", "none"]))
        if turn == "text":
            messages.append({"role": "assistant", "content": draw(text)})
        elif turn == "tools":
            messages.extend(draw(anthropic_tool_turn()))
            messages.append(draw(anthropic_user))
    request: Json = {"model": draw(name), "messages": messages, "max_tokens": draw(st.integers(1, 8192))}
    if draw(st.booleans()):
        request["system"] = draw(nonempty)
    for key, strategy in (("temperature", unit), ("top_p", unit),
                          ("stop_sequences", st.lists(nonempty, min_size=1, max_size=3))):
        if draw(st.booleans()):
            request[key] = draw(strategy)
    if draw(st.booleans()):
        request["metadata"] = {"user_id": draw(name)}
    if draw(st.booleans()):
        tools = draw(st.lists(st.tuples(name, text, schema), min_size=1, max_size=3, unique_by=lambda t: t[0]))
        request["tools"] = [{"name": n, **({"description": d} if d else {}), "input_schema": s}
                            for n, d, s in tools]
        choice = draw(st.sampled_from(["auto", "any", "none", "tool", None]))
        if choice is not None:
            request["tool_choice"] = {"type": choice, **({"name": tools[0][0]} if choice == "tool" else {})}
            if choice != "none" and draw(st.booleans()):
                request["tool_choice"]["disable_parallel_tool_use"] = True
    if draw(st.booleans()):
        request["stream"] = True
    return request


# ---- responses ----

usage_counts = st.integers(0, 10**6)


@st.composite
def anthropic_messages(draw: st.DrawFn) -> Json:
    """An Anthropic message: at most one (non-empty) text block, then tool_use blocks."""
    content: list[Json] = []
    intro = draw(st.none() | nonempty)
    if intro:
        content.append({"type": "text", "text": intro})
    for i in draw(st.lists(ident, max_size=3, unique=True)):
        content.append({"type": "tool_use", "id": i, "name": draw(name), "input": draw(arguments)})
    has_tools = any(b["type"] == "tool_use" for b in content)
    return {"id": "msg_" + draw(ident), "type": "message", "role": "assistant", "model": draw(name),
            "content": content, "stop_reason": "tool_use" if has_tools else draw(st.sampled_from(
                ["end_turn", "max_tokens"])), "stop_sequence": None,
            "usage": {"input_tokens": draw(usage_counts), "output_tokens": draw(usage_counts)}}


@st.composite
def chat_completions(draw: st.DrawFn) -> Json:
    calls = [{"id": i, "type": "function", "function": {"name": draw(name), "arguments": json.dumps(
        draw(arguments), ensure_ascii=False, separators=(",", ":"))}}
        for i in draw(st.lists(ident, max_size=3, unique=True))]
    content = draw(st.none() | nonempty) if calls else draw(nonempty)
    message: Json = {"role": "assistant", "content": content, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    finish = "tool_calls" if calls else draw(st.sampled_from(["stop", "length"]))
    prompt, completion = draw(usage_counts), draw(usage_counts)
    return {"id": "chatcmpl-" + draw(ident), "object": "chat.completion", "created": draw(st.integers(0, 2**31)),
            "model": draw(name), "choices": [{"index": 0, "message": message, "logprobs": None,
                                              "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}
