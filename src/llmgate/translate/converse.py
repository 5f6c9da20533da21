"""OpenAI chat requests → AWS Bedrock Converse requests, Converse responses → OpenAI chat.completion objects, and
Bedrock error responses → OpenAI's error shape. Pure functions.

https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html. The request goes through
the Anthropic Messages translation first (chat_to_messages.py: system hoisting, tool results grouped into one
user turn, the same 400s for what cannot be expressed), whose blocks map one to one onto Converse's:
  system                         → system: [{text}]
  text / image (base64) blocks   → {text} / {image: {format, source: {bytes}}} (an image URL is a 400: Converse
                                   takes bytes or S3 only)
  tool_use / tool_result         → {toolUse: {toolUseId, name, input}} / {toolResult: {toolUseId, content}}
  tools / tool_choice            → toolConfig: {tools: [{toolSpec: {name, description, inputSchema: {json}}}],
                                   toolChoice: {auto} | {any} | {tool: {name}}} ("none" has no equivalent: omitted)
  max_tokens, temperature, top_p, stop → inferenceConfig: maxTokens, temperature, topP, stopSequences
The model is in the URL, not the body.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec

from llmgate.translate.chat_to_messages import TranslationError, anthropic_request

Json = dict[str, Any]
_encode = msgspec.json.Encoder().encode

STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
                "model_context_window_exceeded": "length"}
"""Converse stopReason → OpenAI finish_reason."""
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                  "image/webp": "webp"}
_TOOL_CHOICES: dict[str, Json] = {"auto": {"auto": {}}, "any": {"any": {}}}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 408: "timeout", 413: "invalid_request_error", 424: "model_error",
                429: "rate_limit_error"}


def _block(block: Json, where: str) -> Json:
    kind = block.get("type")
    if kind == "text":
        return {"text": block["text"]}
    if kind == "image":
        source = block["source"]
        image_format = _IMAGE_FORMATS.get(source.get("media_type", ""))
        if source.get("type") != "base64" or image_format is None:
            raise TranslationError(f"{where}: images must be data: URLs of PNG, JPEG, GIF or WebP for this model "
                                   "(Bedrock takes no image URLs).", where)
        return {"image": {"format": image_format, "source": {"bytes": source["data"]}}}
    if kind == "tool_use":
        return {"toolUse": {"toolUseId": block["id"], "name": block["name"], "input": block["input"]}}
    content = block["content"]
    texts = [content] if isinstance(content, str) else [part["text"] for part in content]
    return {"toolResult": {"toolUseId": block["tool_use_id"], "content": [{"text": text} for text in texts]}}


def _messages(messages: list[Json]) -> list[Json]:
    out = []
    for i, message in enumerate(messages):
        content = message["content"]
        blocks = [{"text": content}] if isinstance(content, str) else \
            [_block(block, f"messages[{i}].content[{j}]") for j, block in enumerate(content)]
        out.append({"role": message["role"], "content": blocks})
    return out


def _tool_config(anthropic: Json) -> Json:
    tools = [{"toolSpec": {"name": tool["name"], **({"description": tool["description"]}
                                                    if tool.get("description") else {}),
                           "inputSchema": {"json": tool["input_schema"]}}} for tool in anthropic["tools"]]
    config: Json = {"tools": tools}
    choice = anthropic.get("tool_choice") or {}
    if choice.get("type") in _TOOL_CHOICES:
        config["toolChoice"] = _TOOL_CHOICES[choice["type"]]
    elif choice.get("type") == "tool":
        config["toolChoice"] = {"tool": {"name": choice["name"]}}
    return config


def converse_request(request: Any) -> Json:
    """An OpenAI chat completion request (decoded JSON) → a Converse request body (the model goes in the URL)."""
    anthropic = anthropic_request(request)
    out: Json = {"messages": _messages(anthropic["messages"])}
    system = anthropic.get("system")
    if system is not None:
        out["system"] = [{"text": system}] if isinstance(system, str) else [{"text": s["text"]} for s in system]
    inference: Json = {}
    max_tokens = request.get("max_completion_tokens") or request.get("max_tokens")
    if max_tokens:  # Converse, unlike Anthropic's API, lets the model's own default apply
        inference["maxTokens"] = anthropic["max_tokens"]
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("stop_sequences", "stopSequences")):
        if ours in anthropic:
            inference[theirs] = anthropic[ours]
    if inference:
        out["inferenceConfig"] = inference
    if "tools" in anthropic:
        out["toolConfig"] = _tool_config(anthropic)
    return out


def openai_usage(usage: Any) -> Json:
    """Converse usage → OpenAI usage (cache reads and writes are prompt tokens too, as Bedrock counts them
    apart from inputTokens)."""
    usage = usage if isinstance(usage, dict) else {}
    cached = usage.get("cacheReadInputTokens") or 0
    prompt = (usage.get("inputTokens") or 0) + cached + (usage.get("cacheWriteInputTokens") or 0)
    completion = usage.get("outputTokens") or 0
    out: Json = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def new_completion_id() -> str:
    """Converse answers carry no id; OpenAI clients expect one."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def chat_completion(response: Any, model: str, created: int) -> Json:
    """A Converse response → an OpenAI chat.completion for `model`; `created` in Unix seconds."""
    message = (response.get("output") or {}).get("message") if isinstance(response, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise TranslationError("The upstream's answer is not a Converse response.")
    texts: list[str] = []
    calls: list[Json] = []
    for block in message["content"]:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            arguments = json.dumps(use.get("input", {}), ensure_ascii=False, separators=(",", ":"))
            calls.append({"id": use.get("toolUseId"), "type": "function",
                          "function": {"name": use.get("name"), "arguments": arguments}})
        # reasoningContent, guardContent and citations have no chat.completion equivalent
    content = "".join(texts)
    reply: Json = {"role": "assistant", "content": content if content or not calls else None, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    finish = STOP_REASONS.get(response.get("stopReason") or "end_turn", "stop")
    return {"id": new_completion_id(), "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
            "usage": openai_usage(response.get("usage"))}


def openai_error_from_bedrock(status: int, body: bytes) -> tuple[int, bytes]:
    """A Bedrock error response (`{"message": ...}`, the exception's name in a header) → (status, OpenAI error
    body); the status is kept (ThrottlingException 429, ValidationException 400, ...)."""
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        decoded = None
    message = None
    if isinstance(decoded, dict):
        message = decoded.get("message") or decoded.get("Message")
    if not isinstance(message, str) or not message:
        message = body[:500].decode("utf-8", "replace").strip() or f"The upstream answered {status}."
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return status, _encode({"error": {"message": message, "type": kind, "param": None, "code": None}})
