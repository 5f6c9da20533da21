"""OpenAI chat requests → Anthropic Messages requests, and Anthropic messages → OpenAI chat.completion objects.

For an OpenAI client calling a model an Anthropic upstream serves. The request mapping:
  system/developer messages     → top-level `system` (hoisted from wherever they stand, in order)
  user content parts            → text / image blocks (data: URLs → base64 source, http(s) URLs → url source)
  assistant `tool_calls`        → tool_use blocks (arguments parsed from their JSON string)
  consecutive `tool` messages   → one user message of tool_result blocks (Anthropic wants them together)
  tools / tool_choice           → tools with `input_schema` / auto, any (required), none, tool
  parallel_tool_calls: false    → tool_choice.disable_parallel_tool_use
  stop                          → stop_sequences
  max_completion_tokens / max_tokens → max_tokens, DEFAULT_MAX_TOKENS when absent (Anthropic requires it)
  temperature                   → temperature, capped at 1 (Anthropic's range is 0-1, OpenAI's 0-2)
  top_p, stream                 → the same; user → metadata.user_id
Dropped, having no Anthropic equivalent: n=1, seed, presence/frequency_penalty, logit_bias, service_tier,
store, reasoning_effort, message `name`s. Rejected with a 400 (`TranslationError`): n > 1, logprobs,
audio output, response_format other than text, content parts other than text and images.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_MAX_TOKENS = 4096
"""max_tokens sent when an OpenAI request sets none: Anthropic requires one, and 4096 is within every
Claude model's output limit (Claude 3 Haiku, the smallest, allows exactly 4096)."""

# Anthropic stop_reason → OpenAI finish_reason
FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                  "pause_turn": "stop", "refusal": "content_filter", "model_context_window_exceeded": "length"}
_TOOL_CHOICES: dict[str, Json] = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}
Json = dict[str, Any]


class TranslationError(ValueError):
    """The request cannot be expressed in the other dialect; the message names the field (a 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def text_parts(content: Any, where: str) -> list[str]:
    """The texts of a string or a list of text parts (system, developer and tool messages)."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or a list of text parts.", where)
    texts = []
    for i, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise TranslationError(f"{where}[{i}] must be a text part for this model.", f"{where}[{i}]")
        texts.append(part["text"])
    return texts


def data_url(url: str, where: str) -> tuple[str, str]:
    """The media type and base64 data of a `data:<type>;base64,<data>` URL (400 when it is not one)."""
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or not media_type:
        raise TranslationError(f"{where}: a data URL must look like data:image/png;base64,....", where)
    return media_type, data


def image_block(url: Any, where: str) -> Json:
    """An OpenAI image URL as an Anthropic image block."""
    if not isinstance(url, str):
        raise TranslationError(f"{where}.image_url.url must be a string.", where)
    if url.startswith("data:"):
        media_type, data = data_url(url, where)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError(f"{where}: an image URL must be an http(s) or data: URL.", where)


def _user_blocks(content: Any, where: str) -> str | list[Json]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or a list of content parts.", where)
    blocks: list[Json] = []
    for i, part in enumerate(content):
        here = f"{where}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            blocks.append(image_block(part["image_url"].get("url"), here))
        else:
            raise TranslationError(f"{here}: only text and image_url parts can be sent to this model.", here)
    return blocks


def _tool_use(call: Any, where: str) -> Json:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or \
            not isinstance(call.get("id"), str):
        raise TranslationError(f"{where} must have an id and a function with a name.", where)
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise TranslationError(f"{where}.function.arguments must be a JSON object in a string.", where)
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": parsed}


def _assistant(message: Json, where: str) -> Json:
    content, calls = message.get("content"), message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise TranslationError(f"{where}.tool_calls must be a list.", f"{where}.tool_calls")
    if isinstance(content, str) and not calls:
        return {"role": "assistant", "content": content}
    blocks: list[Json] = []
    if content is not None and content != "":
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for i, part in enumerate(parts):
            text = part.get("text", part.get("refusal")) if isinstance(part, dict) else None
            if not isinstance(text, str):
                raise TranslationError(f"{where}.content[{i}] must be a text or refusal part.", where)
            if text:
                blocks.append({"type": "text", "text": text})
    blocks.extend(_tool_use(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(calls))
    return {"role": "assistant", "content": blocks}


def _tool_result(message: Json, where: str) -> Json:
    if not isinstance(message.get("tool_call_id"), str):
        raise TranslationError(f"{where}.tool_call_id is required.", f"{where}.tool_call_id")
    content = message.get("content")
    texts = text_parts(content if content is not None else "", f"{where}.content")
    result: Any = texts[0] if isinstance(content, str) else [{"type": "text", "text": t} for t in texts]
    return {"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": result}


def convert_messages(messages: Any) -> tuple[list[str], list[Json]]:
    """OpenAI `messages` → (system texts, Anthropic messages)."""
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list.", "messages")
    system: list[str] = []
    out: list[Json] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            system.extend(text_parts(message.get("content"), f"{where}.content"))
        elif role == "user":
            out.append({"role": "user", "content": _user_blocks(message.get("content"), f"{where}.content")})
        elif role == "assistant":
            out.append(_assistant(message, where))
        elif role == "tool":
            block = _tool_result(message, where)
            previous = out[-1] if out else None
            if previous and previous["role"] == "user" and isinstance(previous["content"], list) and \
                    previous["content"] and previous["content"][-1]["type"] == "tool_result":
                previous["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        else:
            raise TranslationError(f"{where}.role must be system, developer, user, assistant or tool.",
                                   f"{where}.role")
    return system, out


def function_tools(tools: Any) -> list[Json]:
    """The `function` of each OpenAI tool in `tools`, each checked to be a function tool with a name (400 naming
    the first that is not)."""
    if not isinstance(tools, list):
        raise TranslationError("tools must be a list.", "tools")
    functions = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise TranslationError(f"tools[{i}] must be a function tool with a name.", f"tools[{i}]")
        functions.append(function)
    return functions


def _tools(tools: Any) -> list[Json]:
    out = []
    for function in function_tools(tools):
        converted: Json = {"name": function["name"]}
        if function.get("description"):
            converted["description"] = function["description"]
        converted["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
        out.append(converted)
    return out


def _tool_choice(choice: Any, parallel: Any) -> Json | None:
    converted: Json | None
    if choice is None:
        converted = {"type": "auto"} if parallel is False else None
    elif isinstance(choice, str) and choice in _TOOL_CHOICES:
        converted = dict(_TOOL_CHOICES[choice])
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and \
            isinstance(choice["function"].get("name"), str):
        converted = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise TranslationError("tool_choice must be auto, required, none or a named function.", "tool_choice")
    if converted is not None and parallel is False and converted["type"] != "none":
        converted["disable_parallel_tool_use"] = True
    return converted


def _reject_unsupported(request: Json) -> None:
    if request.get("n") not in (None, 1):
        raise TranslationError("n > 1 is not supported for this model.", "n")
    if request.get("logprobs"):
        raise TranslationError("logprobs are not supported for this model.", "logprobs")
    if request.get("audio") is not None or "audio" in (request.get("modalities") or ()):
        raise TranslationError("audio output is not supported for this model.", "audio")
    response_format = request.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise TranslationError("response_format is not supported for this model.", "response_format")


def _number(request: Json, key: str) -> float | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TranslationError(f"{key} must be a number.", key)
    return value


def anthropic_request(request: Any) -> Json:
    """An OpenAI chat completion request (decoded JSON) → an Anthropic Messages request."""
    if not isinstance(request, dict):
        raise TranslationError("The request body must be a JSON object.")
    _reject_unsupported(request)
    system, messages = convert_messages(request.get("messages"))
    out: Json = {"model": request.get("model"), "messages": messages}
    if system:
        out["system"] = system[0] if len(system) == 1 else [{"type": "text", "text": t} for t in system]
    max_tokens = _number(request, "max_completion_tokens") or _number(request, "max_tokens")
    out["max_tokens"] = int(max_tokens) if max_tokens else DEFAULT_MAX_TOKENS
    temperature = _number(request, "temperature")
    if temperature is not None:
        out["temperature"] = min(temperature, 1.0)
    top_p = _number(request, "top_p")
    if top_p is not None:
        out["top_p"] = top_p
    stop = request.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise TranslationError("stop must be a string or a list of strings.", "stop")
        if stops:
            out["stop_sequences"] = stops
    if request.get("tools"):
        out["tools"] = _tools(request["tools"])
    choice = _tool_choice(request.get("tool_choice"), request.get("parallel_tool_calls"))
    if choice is not None and "tools" in out:
        out["tool_choice"] = choice
    if isinstance(request.get("user"), str):
        out["metadata"] = {"user_id": request["user"]}
    if request.get("stream") is True:
        out["stream"] = True
    return out


def openai_usage(usage: Any) -> Json:
    """Anthropic usage → OpenAI usage: cache reads and writes are prompt tokens too."""
    usage = usage if isinstance(usage, dict) else {}
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + cached + (usage.get("cache_creation_input_tokens") or 0)
    completion = usage.get("output_tokens") or 0
    out: Json = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def chat_completion(message: Any, created: int) -> Json:
    """An Anthropic message (a non-streamed response) → an OpenAI chat.completion; `created` in Unix seconds."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise TranslationError("The upstream's answer is not an Anthropic message.")
    texts: list[str] = []
    calls: list[Json] = []
    for block in message["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input", {}), ensure_ascii=False, separators=(",", ":"))
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": arguments}})
        # thinking, redacted_thinking and server-tool blocks have no chat.completion equivalent
    reply: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None,
                   "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    finish = FINISH_REASONS.get(message.get("stop_reason") or "end_turn", "stop")
    return {"id": message.get("id"), "object": "chat.completion", "created": created, "model": message.get("model"),
            "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
            "usage": openai_usage(message.get("usage"))}
