"""Gemini answers → OpenAI's: `generateContent` responses → chat.completion, embeddings → an OpenAI list,
Google errors → OpenAI errors. Pure.

  candidates[i].content.parts   text → `content` (thought parts left out), functionCall → `tool_calls`
  candidates[i].finishReason    STOP → stop (tool_calls when the turn called functions), MAX_TOKENS → length,
                                SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY →
                                content_filter, anything else → stop
  promptFeedback.blockReason    (no candidates: the prompt was blocked) → one choice, content_filter
  usageMetadata                 promptTokenCount → prompt_tokens (cachedContentTokenCount → cached_tokens),
                                candidatesTokenCount + thoughtsTokenCount → completion_tokens (thoughts →
                                reasoning_tokens)
Errors (https://ai.google.dev/gemini-api/docs/troubleshooting): `{"error": {"code", "message", "status",
"details"}}`; the HTTP status is kept, `status` (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...) becomes the code,
and a RESOURCE_EXHAUSTED's `google.rpc.RetryInfo.retryDelay` says how long the key should rest.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import msgspec

from llmgate.translate.chat_to_messages import TranslationError
from llmgate.translate.gemini_request import THOUGHT_MARK, encode_embedding

Json = dict[str, Any]
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
                  "RECITATION": "content_filter", "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter",
                  "SPII": "content_filter", "IMAGE_SAFETY": "content_filter", "LANGUAGE": "stop", "OTHER": "stop",
                  "MALFORMED_FUNCTION_CALL": "stop", "FINISH_REASON_UNSPECIFIED": "stop"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "invalid_request_error", 429: "rate_limit_error"}
_encode = msgspec.json.Encoder().encode
_MAX_RAW_MESSAGE = 500


def finish_reason(reason: Any, called: bool) -> str:
    """A Gemini finishReason as OpenAI's; a turn that called functions ends with `tool_calls`."""
    mapped = FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if called and mapped == "stop" else mapped


def new_call_id() -> str:
    """A tool call id: Gemini's calls have none, and OpenAI clients answer each by its id."""
    return "call_" + secrets.token_hex(12)


def tool_call(part: Json, call_id: str) -> Json:
    """A `functionCall` part as an OpenAI tool call; its thought signature rides in the id."""
    call = part.get("functionCall") or {}
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        call_id = f"{call_id}{THOUGHT_MARK}{signature}"
    arguments = json.dumps(call.get("args") or {}, ensure_ascii=False, separators=(",", ":"))
    return {"id": call_id, "type": "function", "function": {"name": call.get("name"), "arguments": arguments}}


def openai_usage(meta: Any) -> Json:
    """`usageMetadata` → OpenAI usage."""
    meta = meta if isinstance(meta, dict) else {}
    prompt = meta.get("promptTokenCount") or 0
    thoughts = meta.get("thoughtsTokenCount") or 0
    completion = (meta.get("candidatesTokenCount") or 0) + thoughts
    usage: Json = {"prompt_tokens": prompt, "completion_tokens": completion,
                   "total_tokens": meta.get("totalTokenCount") or prompt + completion}
    if meta.get("cachedContentTokenCount"):
        usage["prompt_tokens_details"] = {"cached_tokens": meta["cachedContentTokenCount"]}
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return usage


def _choice(candidate: Any, position: int) -> Json:
    candidate = candidate if isinstance(candidate, dict) else {}
    content: Json = candidate.get("content") if isinstance(candidate.get("content"), dict) else {}
    parts = content.get("parts")
    parts = parts if isinstance(parts, list) else []
    index = candidate.get("index", position)
    texts: list[str] = []
    calls: list[Json] = []
    for part in parts:
        if not isinstance(part, dict) or part.get("thought") is True:
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            calls.append(tool_call(part, new_call_id()))
    message: Json = {"role": "assistant", "content": "".join(texts) or (None if calls else ""),
                     "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {"index": index, "message": message, "logprobs": None,
            "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls))}


def chat_completion(response: Any, model: str, created: int) -> Json:
    """A `generateContent` response → an OpenAI chat.completion; `created` in Unix seconds."""
    if not isinstance(response, dict):
        raise TranslationError("The upstream's answer is not a Gemini response.")
    candidates = response.get("candidates")
    if isinstance(candidates, list) and candidates:
        choices = [_choice(candidate, i) for i, candidate in enumerate(candidates)]
    elif isinstance(response.get("promptFeedback"), dict) and response["promptFeedback"].get("blockReason"):
        choices = [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": None},
                    "logprobs": None, "finish_reason": "content_filter"}]
    else:
        raise TranslationError("The upstream's answer has no candidates.")
    return {"id": "chatcmpl-" + str(response.get("responseId") or ""), "object": "chat.completion",
            "created": created, "model": response.get("modelVersion") or model, "choices": choices,
            "usage": openai_usage(response.get("usageMetadata"))}


def _embedding_list(vectors: list[Any], model: str, encoding_format: Any, usage: Json | None) -> Json:
    data = []
    for i, values in enumerate(vectors):
        if not isinstance(values, list):
            raise TranslationError("The upstream's answer holds an embedding without values.")
        data.append({"object": "embedding", "index": i, "embedding": encode_embedding(values, encoding_format)})
    out: Json = {"object": "list", "data": data, "model": model}
    if usage is not None:
        out["usage"] = usage
    return out


def gemini_embeddings(response: Any, model: str, encoding_format: Any) -> Json:
    """A `batchEmbedContents` response → an OpenAI embeddings list (Gemini reports no token counts: the usage
    log estimates them)."""
    embeddings = response.get("embeddings") if isinstance(response, dict) else None
    if not isinstance(embeddings, list):
        raise TranslationError("The upstream's answer is not a batchEmbedContents response.")
    return _embedding_list([e.get("values") if isinstance(e, dict) else None for e in embeddings], model,
                           encoding_format, None)


def vertex_embeddings(response: Any, model: str, encoding_format: Any) -> Json:
    """A Vertex AI `predict` response of a text embedding model → an OpenAI embeddings list, with its usage."""
    predictions = response.get("predictions") if isinstance(response, dict) else None
    if not isinstance(predictions, list):
        raise TranslationError("The upstream's answer is not a predict response.")
    vectors: list[Any] = []
    tokens = 0
    for prediction in predictions:
        embeddings = prediction.get("embeddings") if isinstance(prediction, dict) else None
        embeddings = embeddings if isinstance(embeddings, dict) else {}
        vectors.append(embeddings.get("values"))
        statistics = embeddings.get("statistics")
        if isinstance(statistics, dict) and isinstance(statistics.get("token_count"), int | float):
            tokens += int(statistics["token_count"])
    return _embedding_list(vectors, model, encoding_format, {"prompt_tokens": tokens, "total_tokens": tokens})


def _google_error(body: bytes) -> Json | None:
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(decoded, list) and decoded:  # a stream's error comes as a one-element array
        decoded = decoded[0]
    error = decoded.get("error") if isinstance(decoded, dict) else None
    return error if isinstance(error, dict) else None


def openai_error_from_google(status: int, body: bytes) -> tuple[int, bytes]:
    """A Google error response → (status, OpenAI error body): the HTTP status kept, Google's `status` the code."""
    error = _google_error(body)
    if error is not None and isinstance(error.get("message"), str):
        message, code = error["message"], error.get("status")
    else:
        text = body[:_MAX_RAW_MESSAGE].decode("utf-8", "replace").strip()
        message, code = text or f"The upstream answered {status} with an empty body.", None
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return status, _encode({"error": {"message": message, "type": kind, "param": None,
                                      "code": code if isinstance(code, str) else None}})


def retry_delay_s(body: bytes) -> float | None:
    """The `retryDelay` of a Google error's RetryInfo detail (`"37s"`, `"1.5s"`), in seconds; None without."""
    error = _google_error(body)
    details = error.get("details") if error is not None else None
    if not isinstance(details, list):
        return None
    for detail in details:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = float(delay[:-1])
            except ValueError:
                continue
            if seconds >= 0:
                return seconds
    return None
