"""The upstream double's tool calls (both dialects), its stricter Anthropic request checks and error bodies.

When a request offers `tools` and its last message is a fresh user question (not a tool result), the double
calls a tool, as a model would: the one tool_choice names, else the first; tool_choice none → plain text.
The call's arguments fill each property of the tool's JSON schema (string "mock", number 1, boolean true).
Anthropic's shapes follow https://docs.anthropic.com/en/docs/build-with-claude/tool-use and its streaming
page (tool_use block at index 1 after a text block, `input_json_delta` pieces starting with an empty one,
stop_reason `tool_use`); OpenAI's: `tool_calls` deltas (id and name first, then argument pieces),
finish_reason `tool_calls`.
"""

from __future__ import annotations

from typing import Any

import msgspec

_enc = msgspec.json.encode
TOOL_INTRO = "Let me check."
_ANTHROPIC_BLOCKS = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking",
                               "redacted_thinking", "search_result"})


def _arguments(schema: Any) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema, dict) else None
    kinds: dict[Any, Any] = {"string": "mock", "number": 1, "integer": 1, "boolean": True}
    return {name: kinds.get(spec.get("type")) if isinstance(spec, dict) else None
            for name, spec in (props or {}).items()}


def _split(text: str, parts: int = 3) -> list[str]:
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)]


def anthropic_tool(tools: Any, tool_choice: Any, messages: Any) -> tuple[str, dict[str, Any]] | None:
    """(tool name, input) the double calls for an Anthropic request, or None for a text answer."""
    if not isinstance(tools, list) or not tools or not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    content = last.get("content") if isinstance(last, dict) else None
    if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return None
    choice = tool_choice if isinstance(tool_choice, dict) else {}
    if choice.get("type") == "none":
        return None
    tool = next((t for t in tools if t.get("name") == choice.get("name")), tools[0]) if choice.get("name") \
        else tools[0]
    return tool.get("name", "tool"), _arguments(tool.get("input_schema"))


def openai_tool(tools: Any, tool_choice: Any, messages: Any) -> tuple[str, dict[str, Any]] | None:
    """(function name, arguments) the double calls for an OpenAI chat request, or None for a text answer."""
    if not isinstance(tools, list) or not tools or not isinstance(messages, list) or not messages:
        return None
    if not isinstance(messages[-1], dict) or messages[-1].get("role") != "user" or tool_choice == "none":
        return None
    named = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    functions = [t.get("function") or {} for t in tools if isinstance(t, dict)]
    function = next((f for f in functions if f.get("name") == named), functions[0] if functions else {})
    return function.get("name", "tool"), _arguments(function.get("parameters"))


def anthropic_tool_body(model: str, name: str, args: dict[str, Any]) -> bytes:
    return _enc({"id": "msg_mock_tool", "type": "message", "role": "assistant", "model": model,
                 "content": [{"type": "text", "text": TOOL_INTRO},
                             {"type": "tool_use", "id": "toolu_mock", "name": name, "input": args}],
                 "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 11, "output_tokens": 9}})


def anthropic_tool_frames(model: str, name: str, args: dict[str, Any]) -> tuple[bytes, tuple[bytes, ...], bytes]:
    def ev(data: dict[str, Any]) -> bytes:
        return b"event: %s\ndata: %s\n\n" % (data["type"].encode(), _enc(data))

    head = ev({"type": "message_start", "message": {
        "id": "msg_mock_tool", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 11, "output_tokens": 1}}})
    head += ev({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    head += ev({"type": "ping"})
    deltas = [ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": TOOL_INTRO}}),
              ev({"type": "content_block_stop", "index": 0}),
              ev({"type": "content_block_start", "index": 1, "content_block": {
                  "type": "tool_use", "id": "toolu_mock", "name": name, "input": {}}})]
    deltas += [ev({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta",
                                                                       "partial_json": piece}})
               for piece in ["", *_split(_enc(args).decode())]]
    tail = ev({"type": "content_block_stop", "index": 1})
    tail += ev({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 9}})
    return head, tuple(deltas), tail + ev({"type": "message_stop"})


def openai_tool_body(model: str, name: str, args: dict[str, Any]) -> bytes:
    call = {"id": "call_mock", "type": "function", "function": {"name": name, "arguments": _enc(args).decode()}}
    return _enc({"id": "chatcmpl-mock-tool", "object": "chat.completion", "created": 1700000000, "model": model,
                 "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None,
                              "message": {"role": "assistant", "content": None, "tool_calls": [call]}}],
                 "usage": {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}})


def openai_tool_frames(model: str, name: str, args: dict[str, Any],
                       usage: bool) -> tuple[bytes, tuple[bytes, ...], bytes]:
    base = {"id": "chatcmpl-mock-tool", "object": "chat.completion.chunk", "created": 1700000000, "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return b"data: " + _enc({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) \
            + b"\n\n"

    first = {"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": "call_mock", "type": "function", "function": {"name": name, "arguments": ""}}]}
    deltas = [chunk(first)] + [chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                               for piece in _split(_enc(args).decode())]
    tail = chunk({}, "tool_calls")
    if usage:
        tail += b"data: " + _enc({**base, "choices": [], "usage": {
            "prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20}}) + b"\n\n"
    return b"", tuple(deltas), tail + b"data: [DONE]\n\n"


def _block_invalid(block: Any, where: str, tool_ids: set[str]) -> str | None:
    if not isinstance(block, dict) or block.get("type") not in _ANTHROPIC_BLOCKS:
        return f"{where}: Input tag '{block.get('type') if isinstance(block, dict) else block}' found using " \
               "'type' does not match any of the expected tags"
    if block["type"] == "tool_result" and block.get("tool_use_id") not in tool_ids:
        return f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: {block.get('tool_use_id')}. " \
               "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
    if block["type"] == "image":
        source = block.get("source")
        if not isinstance(source, dict) or source.get("type") not in ("base64", "url"):
            return f"{where}.source: Field required"
    return None


def anthropic_content_invalid(system: Any, messages: list[Any], tools: Any, temperature: Any) -> str | None:
    """Further checks the real Messages API makes (system shape, block types, tool_result pairing, ranges)."""
    if system is not None and not isinstance(system, str) and not (
            isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system)):
        return "system: Input should be a valid string or a list of text blocks"
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 1):
        return "temperature: Input should be less than or equal to 1"
    if tools is not None and (not isinstance(tools, list) or any(
            not isinstance(t, dict) or not t.get("name") or "input_schema" not in t for t in tools)):
        return "tools: each tool needs a name and an input_schema"
    tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, list):
            for j, block in enumerate(content):
                bad = _block_invalid(block, f"messages.{i}.content.{j}", tool_ids)
                if bad:
                    return bad
        elif not isinstance(content, str):
            return f"messages.{i}.content: Input should be a valid list or string"
        tool_ids = {str(b.get("id")) for b in content if isinstance(b, dict) and b.get("type") == "tool_use"} \
            if message.get("role") == "assistant" and isinstance(content, list) else set()
    return None


_ANTHROPIC_ERRORS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                     404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                     529: "overloaded_error"}


def anthropic_error_body(status: int) -> bytes:
    """Anthropic's error shape for an x-mock-status on a messages path (https://docs.anthropic.com/en/api/errors)."""
    kind = _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return _enc({"type": "error", "error": {"type": kind, "message": f"mock error {status}"},
                 "request_id": "req_mock"})
