"""OpenAI chat and embeddings requests → Gemini `generateContent` / `batchEmbedContents` / Vertex `predict`
bodies. Pure.

The chat mapping (https://ai.google.dev/api/generate-content):
  system/developer messages     → `systemInstruction.parts` (hoisted from wherever they stand, in order)
  user text / image / audio     → `contents[role=user].parts`: text, `inlineData` (data: URLs, input_audio),
                                  `fileData` (http(s) and gs:// URLs)
  assistant text, `tool_calls`  → `contents[role=model].parts`: text, `functionCall` {name, args} (a
                                  thought signature carried in the call's id goes back with it)
  empty texts                   → left out, and a turn left with no parts (Google rejects both)
  consecutive `tool` messages   → one user turn of `functionResponse` parts (the name found from the call's id)
  tools / tool_choice           → `tools[0].functionDeclarations` (`parametersJsonSchema`) / `toolConfig`
  response_format               → `responseMimeType` application/json (+ `responseJsonSchema`)
  temperature, top_p, max(_completion)_tokens, stop, n, seed, presence/frequency_penalty
                                → `generationConfig` (temperature, topP, maxOutputTokens, stopSequences,
                                  candidateCount, seed, presencePenalty, frequencyPenalty)
Dropped, having no Gemini equivalent: user, parallel_tool_calls, store, service_tier, logit_bias, metadata,
message `name`s. Rejected with a 400 (`TranslationError`): logprobs, audio output, unknown content parts.
"""

from __future__ import annotations

import array
import base64
import json
import mimetypes
import sys
from typing import Any

from llmgate.translate.chat_to_messages import TranslationError, data_url, function_tools, text_parts

Json = dict[str, Any]
THOUGHT_MARK = "~ts~"
"""Separates a tool call's id from the Gemini thought signature it carries (Gemini 3 wants the signature of a
function call sent back with it; OpenAI clients keep only the id)."""
_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
_NUMBERS = (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
            ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"))


def media_part(url: Any, where: str) -> Json:
    """An OpenAI image URL as a Gemini part: data: URLs inline, other URLs by reference."""
    if not isinstance(url, str):
        raise TranslationError(f"{where}.image_url.url must be a string.", where)
    if url.startswith("data:"):
        mime_type, data = data_url(url, where)
        return {"inlineData": {"mimeType": mime_type, "data": data}}
    if url.startswith(("http://", "https://", "gs://")):
        guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
        return {"fileData": {"mimeType": guessed or "image/jpeg", "fileUri": url}}
    raise TranslationError(f"{where}: an image URL must be an http(s), gs:// or data: URL.", where)


def _user_part(part: Any, where: str) -> Json:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return {"text": part["text"]}
    if kind == "image_url" and isinstance(part.get("image_url"), dict):
        return media_part(part["image_url"].get("url"), where)
    audio = part.get("input_audio") if kind == "input_audio" else None
    if isinstance(audio, dict) and isinstance(audio.get("data"), str) and isinstance(audio.get("format"), str):
        return {"inlineData": {"mimeType": f"audio/{audio['format']}", "data": audio["data"]}}
    raise TranslationError(f"{where}: only text, image_url and input_audio parts can be sent to this model.", where)


def _user_parts(content: Any, where: str) -> list[Json]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or a list of content parts.", where)
    return [_user_part(part, f"{where}[{i}]") for i, part in enumerate(content)]


def _arguments(call: Any, where: str) -> tuple[str, str, Json]:
    """(id, name, parsed arguments) of an assistant's tool call."""
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
    return call["id"], function["name"], parsed


def _model_turn(message: Json, where: str, names: dict[str, str]) -> list[Json]:
    content, calls = message.get("content"), message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise TranslationError(f"{where}.tool_calls must be a list.", f"{where}.tool_calls")
    parts: list[Json] = []
    if content is not None and content != "":
        items = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for i, item in enumerate(items):
            text = item.get("text", item.get("refusal")) if isinstance(item, dict) else None
            if not isinstance(text, str):
                raise TranslationError(f"{where}.content[{i}] must be a text or refusal part.", where)
            if text:
                parts.append({"text": text})
    for j, call in enumerate(calls):
        call_id, name, args = _arguments(call, f"{where}.tool_calls[{j}]")
        names[call_id] = name
        part: Json = {"functionCall": {"name": name, "args": args}}
        _, mark, signature = call_id.partition(THOUGHT_MARK)
        if mark and signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(message: Json, where: str, names: dict[str, str]) -> Json:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise TranslationError(f"{where}.tool_call_id is required.", f"{where}.tool_call_id")
    name = names.get(call_id)
    if name is None:
        raise TranslationError(f"{where}.tool_call_id {call_id!r} answers no tool call of an earlier assistant "
                               "message.", f"{where}.tool_call_id")
    content = message.get("content")
    text = "".join(text_parts(content if content is not None else "", f"{where}.content"))
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


def convert_messages(messages: Any) -> tuple[list[str], list[Json]]:
    """OpenAI `messages` → (system texts, Gemini `contents`)."""
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list.", "messages")
    system: list[str] = []
    contents: list[Json] = []
    names: dict[str, str] = {}  # tool call id → function name (a functionResponse names its function)
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            system.extend(text_parts(message.get("content"), f"{where}.content"))
        elif role in ("user", "assistant"):
            parts = _user_parts(message.get("content"), f"{where}.content") if role == "user" \
                else _model_turn(message, where, names)
            parts = [p for p in parts if p.get("text") != ""]
            if parts:  # Google rejects empty text and turns without parts: an empty message says nothing
                contents.append({"role": "user" if role == "user" else "model", "parts": parts})
        elif role == "tool":
            part = _function_response(message, where, names)
            last = contents[-1] if contents else None
            if last is not None and last["role"] == "user" and "functionResponse" in last["parts"][-1]:
                last["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            raise TranslationError(f"{where}.role must be system, developer, user, assistant or tool.",
                                   f"{where}.role")
    if not contents:
        raise TranslationError("messages must hold at least one user or assistant message.", "messages")
    return system, contents


def _tools(tools: Any) -> list[Json]:
    declarations = []
    for function in function_tools(tools):
        declaration: Json = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters"):
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def _tool_config(choice: Any) -> Json | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _MODES:
        return {"functionCallingConfig": {"mode": _MODES[choice]}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict) and \
            isinstance(choice["function"].get("name"), str):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}}
    raise TranslationError("tool_choice must be auto, required, none or a named function.", "tool_choice")


def _response_format(value: Any, config: Json) -> None:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
        return
    schema = value.get("json_schema") if kind == "json_schema" else None
    if not isinstance(schema, dict) or not isinstance(schema.get("schema", {}), dict):
        raise TranslationError("response_format must be text, json_object or json_schema with a schema object.",
                               "response_format")
    config["responseMimeType"] = "application/json"
    if "schema" in schema:
        config["responseJsonSchema"] = schema["schema"]


def _number(request: Json, key: str) -> float | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TranslationError(f"{key} must be a number.", key)
    return value


def _generation_config(request: Json) -> Json:
    config: Json = {}
    for key, name in _NUMBERS:
        value = _number(request, key)
        if value is not None:
            config[name] = int(value) if key == "seed" else value
    max_tokens = _number(request, "max_completion_tokens") or _number(request, "max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = int(max_tokens)
    n = _number(request, "n")
    if n is not None and n != 1:
        if n < 1 or n != int(n):
            raise TranslationError("n must be a positive integer.", "n")
        config["candidateCount"] = int(n)
    stop = request.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise TranslationError("stop must be a string or a list of strings.", "stop")
        if stops:
            config["stopSequences"] = stops
    if request.get("response_format") is not None:
        _response_format(request["response_format"], config)
    return config


def gemini_request(request: Any) -> Json:
    """An OpenAI chat completion request (decoded JSON) → a Gemini `generateContent` body (the model goes in
    the URL, `stream` in the method)."""
    if not isinstance(request, dict):
        raise TranslationError("The request body must be a JSON object.")
    if request.get("logprobs"):
        raise TranslationError("logprobs are not supported for this model.", "logprobs")
    if request.get("audio") is not None or "audio" in (request.get("modalities") or ()):
        raise TranslationError("audio output is not supported for this model.", "audio")
    system, contents = convert_messages(request.get("messages"))
    out: Json = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    if request.get("tools"):
        out["tools"] = _tools(request["tools"])
        tool_config = _tool_config(request.get("tool_choice"))
        if tool_config is not None:
            out["toolConfig"] = tool_config
    config = _generation_config(request)
    if config:
        out["generationConfig"] = config
    return out


def embedding_inputs(request: Any) -> tuple[list[str], int | None]:
    """An OpenAI embeddings request → (its texts, `dimensions`); token-array inputs cannot be sent to Google."""
    if not isinstance(request, dict):
        raise TranslationError("The request body must be a JSON object.")
    raw = request.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise TranslationError("input must be a string or a non-empty list of strings for this model.", "input")
    dimensions = request.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise TranslationError("dimensions must be a positive integer.", "dimensions")
    return texts, dimensions


def batch_embed_request(texts: list[str], dimensions: int | None, model: str) -> Json:
    """Gemini `batchEmbedContents`: one request per text, each naming the model."""
    requests = []
    for text in texts:
        one: Json = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            one["outputDimensionality"] = dimensions
        requests.append(one)
    return {"requests": requests}


def vertex_embed_request(texts: list[str], dimensions: int | None) -> Json:
    """Vertex AI `predict` for text embedding models: an instance per text."""
    out: Json = {"instances": [{"content": text} for text in texts]}
    if dimensions is not None:
        out["parameters"] = {"outputDimensionality": dimensions}
    return out


def encode_embedding(values: list[float], encoding_format: Any) -> list[float] | str:
    """An embedding as the client asked: floats, or (`base64`, the OpenAI SDK's default) little-endian float32s."""
    if encoding_format != "base64":
        return values
    packed = array.array("f", values)
    if packed.itemsize != 4:  # pragma: no cover - every supported platform has 4-byte floats
        raise TranslationError("float32 embeddings are not available on this platform.")
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
