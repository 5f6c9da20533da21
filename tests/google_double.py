"""A Gemini API and Vertex AI double for the in-process harness (a `Handler` of tests/inprocess/upstream.py).

It checks what the real APIs check and a wrong translation would break: the key (`x-goog-api-key`) or, on
Vertex, a bearer token its token endpoint issued; the body's required fields and no unknown ones (Google
rejects `model` or `messages` in a generateContent body); each part holding exactly one kind of data; function
responses answering the calls of the turn before them, by name and count; `models/{model}` in each
batchEmbedContents request matching the URL; and on Vertex's rawPredict, `anthropic_version` in the body and
no `model`. Answers are deterministic: text, function calls when tools are offered, JSON for a JSON
`responseMimeType`, `candidateCount` candidates, MAX_TOKENS when `maxOutputTokens` is below the answer, safety
blocks for prompts that say BLOCKME (the prompt) or UNSAFE (the answer); streams in Google's SSE
(`\\r\\n\\r\\n`-separated events, usageMetadata in every one, finishReason in the last).

Faults, per request header (forwarded by the gateway): `x-mock-status` (Google's error body for that status;
a 429 carries a RetryInfo of `x-mock-retry-delay`, default 37s), `x-mock-chunks` (stream events); and per key,
`exhausted` (429 with RetryInfo 37s).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from tests.inprocess.upstream import Reply, Sent

KEY = "AIza-test-gemini-key-000000000000"
TEXT = "Hello from the Gemini double."
STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_TOP = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"}
_CONFIG = {"temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "responseMimeType",
           "responseSchema", "responseJsonSchema", "seed", "presencePenalty", "frequencyPenalty", "thinkingConfig"}
_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse")
_VERTEX = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/(google|anthropic)/models/([^/:]+):(\w+)$")
_GEMINI = re.compile(r"^/v1beta/models/([^/:]+):(\w+)$")


class Invalid(Exception):
    """A body the real API would reject with 400 INVALID_ARGUMENT."""


def error(status: int, message: str, retry_delay: str = "37s") -> Reply:
    body: dict[str, Any] = {"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}
    if status == 429:
        body["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
    return Reply(status, json.dumps({"error": body}).encode(), [("content-type", "application/json")])


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Invalid(message)


def _check_part(part: Any, where: str) -> None:
    _require(isinstance(part, dict), f"{where} must be an object")
    kinds = [k for k in _DATA if k in part]
    _require(len(kinds) == 1, f"{where} must hold exactly one of {', '.join(_DATA)}; got {sorted(part)}")
    unknown = set(part) - {*_DATA, "thought", "thoughtSignature"}
    _require(not unknown, f"Invalid JSON payload received. Unknown name {sorted(unknown)} at '{where}'")
    kind = kinds[0]
    value = part[kind]
    if kind == "text":
        _require(isinstance(value, str) and value != "", "Unable to submit request because it has an empty text "
                 f"parameter ({where}.text). Add a value to the parameter and try again.")
    elif kind == "inlineData":
        _require(isinstance(value, dict) and bool(value.get("mimeType")) and bool(value.get("data")),
                 f"{where}.inlineData needs mimeType and data")
    elif kind == "fileData":
        _require(isinstance(value, dict) and bool(value.get("fileUri")), f"{where}.fileData needs fileUri")
    elif kind == "functionCall":
        _require(isinstance(value, dict) and bool(value.get("name")) and isinstance(value.get("args", {}), dict),
                 f"{where}.functionCall needs a name and args object")
    else:
        _require(isinstance(value, dict) and bool(value.get("name")) and isinstance(value.get("response"), dict),
                 f"{where}.functionResponse needs a name and a response object")


def _check_turns(contents: Any) -> None:
    _require(isinstance(contents, list) and bool(contents), "contents is not specified")
    previous_calls: list[str] = []
    for i, turn in enumerate(contents):
        _require(isinstance(turn, dict) and turn.get("role") in ("user", "model"),
                 f"contents[{i}].role must be user or model")
        parts = turn.get("parts")
        _require(isinstance(parts, list) and bool(parts), f"contents[{i}].parts must not be empty")
        for j, part in enumerate(parts):
            _check_part(part, f"contents[{i}].parts[{j}]")
        answers = [p["functionResponse"]["name"] for p in parts if "functionResponse" in p]
        if answers:
            _require(sorted(answers) == sorted(previous_calls), "Please ensure that the number of function response "
                     "parts is equal to the number of function call parts of the function call turn.")
        previous_calls = [p["functionCall"]["name"] for p in parts if "functionCall" in p]


def check_generate(body: Any) -> None:
    """What generateContent rejects."""
    _require(isinstance(body, dict), "the body must be an object")
    unknown = set(body) - _TOP
    _require(not unknown, f"Invalid JSON payload received. Unknown name {sorted(unknown)}")
    _check_turns(body.get("contents"))
    system = body.get("systemInstruction")
    if system is not None:
        _require(isinstance(system, dict) and isinstance(system.get("parts"), list), "systemInstruction.parts")
    for i, tool in enumerate(body.get("tools") or []):
        for j, declaration in enumerate(tool.get("functionDeclarations") or []):
            _require(bool(declaration.get("name")), f"tools[{i}].functionDeclarations[{j}].name is required")
    config = body.get("generationConfig") or {}
    unknown = set(config) - _CONFIG
    _require(not unknown, f"Invalid JSON payload received. Unknown name {sorted(unknown)} at 'generation_config'")


def _texts(body: dict[str, Any]) -> list[str]:
    return [p["text"] for turn in body["contents"] for p in turn["parts"] if "text" in p]


def _tokens(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


def _function_call(tool: dict[str, Any]) -> dict[str, Any]:
    declaration = tool["functionDeclarations"][0]
    schema = declaration.get("parametersJsonSchema") or declaration.get("parameters") or {}
    args = {name: "Paris" for name in schema.get("required", [])}
    return {"functionCall": {"name": declaration["name"], "args": args}, "thoughtSignature": "c2lnbmF0dXJl"}


def answer_parts(body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The parts of one candidate and its finishReason."""
    last = body["contents"][-1]["parts"]
    responses = [p["functionResponse"] for p in last if "functionResponse" in p]
    config = body.get("generationConfig") or {}
    if responses:
        text = "The tools said: " + json.dumps([r["response"] for r in responses], sort_keys=True)
    elif body.get("tools") and (body.get("toolConfig") or {}).get("functionCallingConfig", {}).get("mode") != "NONE":
        return [{"text": "Let me check."}, _function_call(body["tools"][0])], "STOP"
    elif config.get("responseMimeType") == "application/json":
        text = json.dumps({"answer": "yes", "schema_seen": "responseJsonSchema" in config})
    elif any("UNSAFE" in t for t in _texts(body)):
        return [], "SAFETY"
    else:
        text = TEXT
    limit = config.get("maxOutputTokens")
    if limit is not None and limit < len(text.split()):
        return [{"text": " ".join(text.split()[:limit])}], "MAX_TOKENS"
    return [{"text": text}], "STOP"


def generate(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A whole generateContent response."""
    prompt = _tokens(_texts(body))
    if any("BLOCKME" in t for t in _texts(body)):
        return {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": prompt,
                "totalTokenCount": prompt}, "modelVersion": model}
    parts, reason = answer_parts(body)
    count = (body.get("generationConfig") or {}).get("candidateCount", 1)
    candidates = [{"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": i}
                  for i in range(count)]
    completion = _tokens([p["text"] for p in parts if "text" in p]) * count
    return {"candidates": candidates, "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": completion,
            "totalTokenCount": prompt + completion}, "modelVersion": model, "responseId": "resp-1"}


def stream_events(whole: dict[str, Any], chunks: int) -> list[bytes]:
    """A whole response as Google's SSE: the first candidate's text split over `chunks` events."""
    if "candidates" not in whole:
        return [b"data: " + json.dumps(whole).encode() + b"\r\n\r\n"]
    candidate = whole["candidates"][0]
    parts = candidate["content"]["parts"]
    text = "".join(p.get("text", "") for p in parts)
    calls = [p for p in parts if "functionCall" in p]
    size = max(1, -(-len(text) // chunks)) if text else 1
    pieces = [text[i:i + size] for i in range(0, len(text), size)] or [""]
    events = []
    for n, piece in enumerate(pieces):
        last = n == len(pieces) - 1
        event_parts = [{"text": piece}] + (calls if last else [])
        event: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": event_parts}, "index": 0}],
                                 "usageMetadata": whole["usageMetadata"], "modelVersion": whole["modelVersion"],
                                 "responseId": whole["responseId"]}
        if last:
            event["candidates"][0]["finishReason"] = candidate["finishReason"]
        events.append(b"data: " + json.dumps(event).encode() + b"\r\n\r\n")
    return events


def embedding(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(digest[i % len(digest)] / 255, 4) for i in range(dimensions)]


class GoogleDouble:
    """The handler; `seen` holds every request as (path, headers, decoded body)."""

    def __init__(self, keys: tuple[str, ...] = (KEY,), tokens: set[str] | None = None) -> None:
        self.keys = keys
        self.exhausted: set[str] = set()
        """Keys answered 429 RESOURCE_EXHAUSTED (quota used up)."""
        self.tokens = tokens
        """Bearer tokens Vertex accepts (those the token endpoint issued); None: no Vertex."""
        self.seen: list[tuple[str, dict[str, str], Any]] = []

    def __call__(self, sent: Sent) -> Reply:
        body = json.loads(sent.body) if sent.body else None
        self.seen.append((sent.path, sent.headers, body))
        status = int(sent.headers.get("x-mock-status", "200"))
        if status != 200:
            return error(status, f"The double was told to answer {status}.", sent.headers.get("x-mock-retry-delay",
                                                                                                "37s"))
        path = sent.path.split("?", 1)[0]
        try:
            if (vertex := _VERTEX.match(path)) is not None:
                return self._vertex(sent, body, vertex.group(3), vertex.group(4), vertex.group(5))
            key = sent.headers.get("x-goog-api-key", "")
            if key not in self.keys:
                return error(400, "API key not valid. Please pass a valid API key.")
            if key in self.exhausted:
                return error(429, "Resource has been exhausted (e.g. check quota).")
            if path == "/v1beta/models" and sent.method == "GET":
                return _json({"models": [{"name": "models/gemini-2.5-flash"}, {"name": "models/gemini-embedding-001"},
                                         {"name": "models/aqa"}]})
            gemini = _GEMINI.match(path)
            if gemini is None:
                return error(404, f"{path} is not found.")
            return self._google(sent, body, gemini.group(1), gemini.group(2))
        except Invalid as exc:
            return error(400, str(exc))

    def _google(self, sent: Sent, body: Any, model: str, method: str) -> Reply:
        if method in ("generateContent", "streamGenerateContent"):
            check_generate(body)
            whole = generate(body, model)
            if method == "generateContent":
                return _json(whole)
            _require("alt=sse" in sent.path, "this double speaks SSE only: alt=sse is required")
            chunks = int(sent.headers.get("x-mock-chunks", "3"))
            return Reply(200, stream_events(whole, chunks), [("content-type", "text/event-stream")])
        if method == "countTokens":
            return _json({"totalTokens": self._count(body, model, vertex="/publishers/" in sent.path)})
        if method == "batchEmbedContents":
            requests = body.get("requests") if isinstance(body, dict) else None
            _require(isinstance(requests, list) and bool(requests), "requests is required")
            vectors = []
            for i, one in enumerate(requests):
                _require(one.get("model") == f"models/{model}", f"requests[{i}].model must be models/{model}")
                parts = (one.get("content") or {}).get("parts") or []
                _require(bool(parts) and all(isinstance(p.get("text"), str) for p in parts),
                         f"requests[{i}].content.parts must hold text")
                vectors.append({"values": embedding(parts[0]["text"], one.get("outputDimensionality", 8))})
            return _json({"embeddings": vectors})
        if method == "predict":
            instances = body.get("instances") if isinstance(body, dict) else None
            _require(isinstance(instances, list) and bool(instances), "instances is required")
            dimensions = (body.get("parameters") or {}).get("outputDimensionality", 8)
            return _json({"predictions": [{"embeddings": {"values": embedding(i["content"], dimensions),
                          "statistics": {"token_count": len(i["content"].split()), "truncated": False}}}
                          for i in instances]})
        return error(404, f"method {method} is not found")

    @staticmethod
    def _count(body: Any, model: str, vertex: bool) -> int:
        """countTokens: Gemini's wants system instructions and tools inside a generateContentRequest naming the
        model (or bare contents); Vertex's takes the fields as they are."""
        _require(isinstance(body, dict), "the body must be an object")
        if not vertex and "generateContentRequest" in body:
            _require(set(body) == {"generateContentRequest"}, "give either contents or generateContentRequest")
            inner = dict(body["generateContentRequest"])
            _require(inner.pop("model", None) == f"models/{model}", "generateContentRequest.model is required")
            body = inner
        elif not vertex:
            _require(set(body) == {"contents"}, "Invalid JSON payload received: only contents without "
                     "generateContentRequest")
        check_generate(body)
        system = [p["text"] for p in (body.get("systemInstruction") or {}).get("parts", [])]
        return _tokens(_texts(body) + system) + 3 * len(body["contents"])

    def _vertex(self, sent: Sent, body: Any, publisher: str, model: str, method: str) -> Reply:
        auth = sent.headers.get("authorization", "")
        if self.tokens is None or auth.removeprefix("Bearer ") not in self.tokens:
            return error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token.")
        if publisher == "google":
            return self._google(sent, body, model, method)
        return claude(sent, body, model, method)


def _json(body: Any) -> Reply:
    return Reply(200, json.dumps(body).encode(), [("content-type", "application/json")])


def claude(sent: Sent, body: Any, model: str, method: str) -> Reply:
    """Anthropic's Messages API on Vertex: rawPredict / streamRawPredict."""
    _require(isinstance(body, dict), "the body must be an object")
    _require(body.get("anthropic_version") == "vertex-2023-10-16", "anthropic_version must be vertex-2023-10-16")
    _require("model" not in body, "model: Extra inputs are not permitted (the model is in the URL)")
    _require(isinstance(body.get("messages"), list) and bool(body["messages"]), "messages: Field required")
    _require(isinstance(body.get("max_tokens"), int), "max_tokens: Field required")
    text = "Hello from Claude on the Vertex double."
    usage = {"input_tokens": 9, "output_tokens": len(text.split())}
    message = {"id": "msg_vertex_1", "type": "message", "role": "assistant", "model": model,
               "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": usage}
    if method == "rawPredict":
        return _json(message)
    _require(method == "streamRawPredict" and body.get("stream") is True, "streamRawPredict needs stream: true")
    start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 9, "output_tokens": 0}}
    words = [w + " " for w in text.split(" ")[:-1]] + [text.split(" ")[-1]]
    events = [("message_start", {"type": "message_start", "message": start}),
              ("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}})]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": w}}) for w in words]
    events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                  "usage": {"output_tokens": usage["output_tokens"]}}),
               ("message_stop", {"type": "message_stop"})]
    frames = [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]
    return Reply(200, frames, [("content-type", "text/event-stream")])
