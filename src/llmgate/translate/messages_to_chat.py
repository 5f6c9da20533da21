"""Anthropic Messages requests → OpenAI chat requests, and OpenAI chat.completion objects → Anthropic messages.

For an Anthropic client calling a model an OpenAI-compatible upstream serves. The request mapping:
  system (string or text blocks)    → a leading system message
  text / image blocks               → text / image_url parts (base64 source → data: URL, url source → URL)
  tool_use blocks                   → assistant tool_calls (input serialized as the arguments string)
  tool_result blocks                → `tool` messages, placed before the rest of that user turn
  tools / tool_choice               → function tools / auto, required (any), none, a named function
  tool_choice.disable_parallel_tool_use → parallel_tool_calls: false
  stop_sequences → stop; max_tokens → max_tokens (the field every OpenAI-compatible server knows)
  temperature, top_p → the same; metadata.user_id → user
  stream → stream with stream_options.include_usage (Anthropic's message_delta carries the usage)
Dropped: top_k, thinking, cache_control, service_tier, a tool_result's is_error flag. Rejected (400):
document blocks, server tools (web search, ...), images inside tool results.
"""

from __future__ import annotations

import json
from typing import Any

from llmgate.translate.chat_to_messages import TranslationError

# OpenAI finish_reason → Anthropic stop_reason
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
Json = dict[str, Any]


def _texts(content: Any, where: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or a list of text blocks.", where)
    out = []
    for i, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise TranslationError(f"{where}[{i}] must be a text block for this model.", f"{where}[{i}]")
        out.append(block["text"])
    return out


def image_url(block: Json, where: str) -> str:
    """An Anthropic image block's source as an OpenAI image URL."""
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64" and isinstance(source.get("data"), str):
        return f"data:{source.get('media_type', 'image/png')};base64,{source['data']}"
    if isinstance(source, dict) and source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    raise TranslationError(f"{where}.source must be a base64 or url image source.", f"{where}.source")


def _tool_message(block: Json, where: str) -> Json:
    if not isinstance(block.get("tool_use_id"), str):
        raise TranslationError(f"{where}.tool_use_id is required.", f"{where}.tool_use_id")
    content = block.get("content", "")
    texts = _texts(content, f"{where}.content")
    converted: Any = content if isinstance(content, str) else [{"type": "text", "text": t} for t in texts]
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": converted}


def _user(content: Any, where: str) -> list[Json]:
    """One Anthropic user turn → tool messages (its tool results), then a user message (the rest)."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or a list of content blocks.", where)
    tools: list[Json] = []
    parts: list[Json] = []
    for i, block in enumerate(content):
        here = f"{where}[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": image_url(block, here)}})
        elif kind == "tool_result":
            tools.append(_tool_message(block, here))
        else:
            raise TranslationError(f"{here}: only text, image and tool_result blocks can be sent to this model.",
                                   here)
    return tools + ([{"role": "user", "content": parts}] if parts else [])


def _assistant(content: Any, where: str) -> Json:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or a list of content blocks.", where)
    texts: list[str] = []
    calls: list[Json] = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use" and isinstance(block.get("id"), str) and isinstance(block.get("name"), str):
            arguments = json.dumps(block.get("input", {}), ensure_ascii=False, separators=(",", ":"))
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": arguments}})
        elif kind not in ("thinking", "redacted_thinking"):  # the model's own reasoning: not sent back
            raise TranslationError(f"{where}[{i}]: only text and tool_use blocks are supported here.",
                                   f"{where}[{i}]")
    message: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def convert_messages(system: Any, messages: Any) -> list[Json]:
    """Anthropic `system` and `messages` → OpenAI `messages`."""
    if not isinstance(messages, list):
        raise TranslationError("messages must be a list.", "messages")
    out: list[Json] = []
    if system is not None and system != "" and system != []:
        texts = _texts(system, "system")
        out.append({"role": "system", "content": system if isinstance(system, str)
                    else [{"type": "text", "text": t} for t in texts]})
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role == "user":
            out.extend(_user(message.get("content"), f"{where}.content"))
        elif role == "assistant":
            out.append(_assistant(message.get("content"), f"{where}.content"))
        else:
            raise TranslationError(f"{where}.role must be user or assistant (system is a top-level parameter).",
                                   f"{where}.role")
    return out


def convert_tools(tools: Any) -> list[Json]:
    if not isinstance(tools, list):
        raise TranslationError("tools must be a list.", "tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or \
                tool.get("type", "custom") != "custom" or "input_schema" not in tool:
            raise TranslationError(f"tools[{i}] must be a custom tool with a name and an input_schema "
                                   "(server tools are not supported for this model).", f"tools[{i}]")
        function: Json = {"name": tool["name"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = tool["input_schema"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any, out: Json) -> None:
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in _TOOL_CHOICES:
        out["tool_choice"] = _TOOL_CHOICES[kind]
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise TranslationError("tool_choice.type must be auto, any, none or tool (with a name).", "tool_choice")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        out["parallel_tool_calls"] = False


def _number(request: Json, key: str) -> float | None:
    value = request.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise TranslationError(f"{key} must be a number.", key)
    return value


def openai_request(request: Any) -> Json:
    """An Anthropic Messages request (decoded JSON) → an OpenAI chat completion request."""
    if not isinstance(request, dict):
        raise TranslationError("The request body must be a JSON object.")
    out: Json = {"model": request.get("model"),
                 "messages": convert_messages(request.get("system"), request.get("messages"))}
    max_tokens = _number(request, "max_tokens")
    if max_tokens is None:
        raise TranslationError("max_tokens: Field required", "max_tokens")
    out["max_tokens"] = int(max_tokens)
    for key in ("temperature", "top_p"):
        value = _number(request, key)
        if value is not None:
            out[key] = value
    stops = request.get("stop_sequences")
    if stops:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise TranslationError("stop_sequences must be a list of strings.", "stop_sequences")
        out["stop"] = stops
    if request.get("tools"):
        out["tools"] = convert_tools(request["tools"])
        _tool_choice(request.get("tool_choice"), out)
    metadata = request.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    if request.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def anthropic_usage(usage: Any) -> Json:
    """OpenAI usage → Anthropic usage (cached prompt tokens become cache reads)."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    cached = (details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    out: Json = {"input_tokens": (usage.get("prompt_tokens") or 0) - cached,
                 "output_tokens": usage.get("completion_tokens") or 0}
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


def _parsed_arguments(arguments: Any) -> Any:
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except ValueError:
        return {"arguments": arguments}  # a model's malformed JSON, kept rather than lost
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def anthropic_message(completion: Any) -> Json:
    """An OpenAI chat.completion → an Anthropic message (the first choice)."""
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise TranslationError("The upstream's answer is not a chat.completion.")
    choice = choices[0]
    message: Json = choice["message"] if isinstance(choice.get("message"), dict) else {}
    content: list[Json] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                        "input": _parsed_arguments(function.get("arguments"))})
    stop_reason = STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn")
    return {"id": completion.get("id"), "type": "message", "role": "assistant", "model": completion.get("model"),
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": anthropic_usage(completion.get("usage"))}
