"""A fake AWS Bedrock runtime (Converse and ConverseStream), strict where a wrong translation would show:

- every request's SigV4 signature is verified with botocore from the test credentials (403
  InvalidSignatureException otherwise, as AWS answers), over the path exactly as it arrived;
- the body is checked against the Converse request's shape (unknown keys, roles, content blocks, inference
  config, tool config: 400 ValidationException, as AWS answers);
- ConverseStream answers in AWS's binary event-stream framing, encoded here from the specification (prelude,
  headers, payload, CRC32s), frames split across writes so the decoder must be incremental.

The model id picks the behaviour: `...throttled...` 429 ThrottlingException, `...not-ready...` 429
ModelNotReadyException, `...unavailable...` 503 ServiceUnavailableException, `...denied...` 403
AccessDeniedException, `...invalid...` 400 ValidationException, `...stream-error...` a stream that breaks with a
modelStreamErrorException; else an answer: a call of the first tool when tools are given and the last turn is not a
tool result, otherwise text. A stream's first frames are cut across writes, unless the request says
`x-double-writes: frames` (each event one write, as Bedrock sends them: what a benchmark of the first byte wants).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "AKIDBEDROCKTEST00001"
SECRET_KEY = "bedrock-double-secret-key-0000000000000001"
SESSION_TOKEN = "bedrock-double-session-token-01"
REGION = "us-east-1"
AWS_ENV = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_SESSION_TOKEN": SESSION_TOKEN,
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true"}
"""The credentials the gateway under test reads (botocore's environment provider), and no other source."""
SEEN: list[dict[str, Any]] = []
"""Every request received: method, path (raw), headers, decoded body."""

_TOP_LEVEL = {"messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
              "additionalModelRequestFields", "promptVariables", "additionalModelResponseFieldPaths",
              "requestMetadata", "performanceConfig"}
_INFERENCE = {"maxTokens", "temperature", "topP", "stopSequences"}
_BLOCKS = {"text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "cachePoint",
           "reasoningContent", "citationsContent"}
_ERRORS = {"throttled": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
           "not-ready": (429, "ModelNotReadyException", "Model is not ready to serve inference requests."),
           "unavailable": (503, "ServiceUnavailableException", "Service is temporarily unavailable."),
           "denied": (403, "AccessDeniedException", "You don't have access to the model with the specified model ID."),
           "invalid": (400, "ValidationException", "The provided model identifier is invalid.")}


class Rejected(Exception):
    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status, self.name, self.message = status, name, message


# The event-stream encoding (https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream):
# total length (u32) | headers length (u32) | prelude CRC32 | headers | payload | message CRC32 (of all before).
def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message whose headers are all strings (value type 7)."""
    encoded = b""
    for name, value in headers.items():
        name_bytes, value_bytes = name.encode(), value.encode()
        encoded += struct.pack(">B", len(name_bytes)) + name_bytes + b"\x07" + struct.pack(">H", len(value_bytes))
        encoded += value_bytes
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(name: str, body: dict[str, Any]) -> bytes:
    return encode_message({":event-type": name, ":content-type": "application/json", ":message-type": "event"},
                          json.dumps(body).encode())


def exception(name: str, message: str) -> bytes:
    return encode_message({":exception-type": name, ":content-type": "application/json",
                           ":message-type": "exception"}, json.dumps({"message": message}).encode())


def verify_signature(method: str, url: str, headers: dict[str, str], body: bytes) -> str | None:
    """None when `headers` carry a valid SigV4 signature of the request by the test credentials; else why not."""
    authorization = headers.get("authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return "Missing Authentication Token"
    fields = dict(part.strip().split("=", 1) for part in authorization[17:].split(","))
    access_key, date, region, service, _ = fields["Credential"].split("/")
    if (access_key, region, service) != (ACCESS_KEY, REGION, "bedrock"):
        return f"The security token included in the request is invalid ({access_key}/{region}/{service})"
    if headers.get("x-amz-security-token") != SESSION_TOKEN:
        return "The security token included in the request is invalid"
    stamp = headers.get("x-amz-date", "")
    signed_at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    if abs((datetime.datetime.now(datetime.UTC) - signed_at).total_seconds()) > 300 or not stamp.startswith(date):
        return "Signature expired"
    names = fields["SignedHeaders"].split(";")
    if not {"host", "x-amz-date"} <= set(names):
        return "host and x-amz-date must be signed"
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in names})
    request.context["timestamp"] = stamp
    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN), "bedrock", REGION)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if expected != fields["Signature"]:
        return "The request signature we calculated does not match the signature you provided."
    return None


def _check_block(block: Any, where: str) -> None:
    if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in _BLOCKS:
        raise Rejected(400, "ValidationException", f"{where}: a content block has exactly one known member")
    kind, value = next(iter(block.items()))
    if kind == "text" and not isinstance(value, str):
        raise Rejected(400, "ValidationException", f"{where}.text must be a string")
    if kind == "toolUse" and not ({"toolUseId", "name", "input"} <= set(value) and isinstance(value["input"], dict)):
        raise Rejected(400, "ValidationException", f"{where}.toolUse needs toolUseId, name and an object input")
    if kind == "toolResult" and not ({"toolUseId", "content"} <= set(value) and isinstance(value["content"], list)):
        raise Rejected(400, "ValidationException", f"{where}.toolResult needs toolUseId and content")
    if kind == "image" and not (value.get("format") in {"png", "jpeg", "gif", "webp"} and "bytes" in value["source"]):
        raise Rejected(400, "ValidationException", f"{where}.image needs a format and source.bytes")


def check_request(body: Any) -> None:
    """Raise Rejected (400 ValidationException) where `body` is not a valid Converse request."""
    if not isinstance(body, dict) or set(body) - _TOP_LEVEL:
        raise Rejected(400, "ValidationException", f"unknown members: {sorted(set(body) - _TOP_LEVEL)}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
        raise Rejected(400, "ValidationException", "A conversation must start with a user message.")
    uses_tools = False
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant") or not message.get("content"):
            raise Rejected(400, "ValidationException", f"messages.{i}: role user or assistant, non-empty content")
        for j, block in enumerate(message["content"]):
            _check_block(block, f"messages.{i}.content.{j}")
            uses_tools = uses_tools or "toolUse" in block or "toolResult" in block
    if set(body.get("inferenceConfig", {})) - _INFERENCE:
        raise Rejected(400, "ValidationException", "inferenceConfig: unknown members")
    if any(not isinstance(s, dict) or set(s) != {"text"} for s in body.get("system", [])):
        raise Rejected(400, "ValidationException", "system: a list of {text}")
    tools = body.get("toolConfig", {}).get("tools", [])
    if uses_tools and not tools:
        raise Rejected(400, "ValidationException", "The toolConfig field must be defined when using toolUse and "
                                                   "toolResult content blocks.")
    for tool in tools:
        spec = tool.get("toolSpec", {})
        if not isinstance(spec.get("name"), str) or "json" not in spec.get("inputSchema", {}):
            raise Rejected(400, "ValidationException", "toolSpec needs a name and inputSchema.json")


def answer_of(model: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, dict[str, int]]:
    """(content blocks, stopReason, usage) for a valid request."""
    last = body["messages"][-1]
    texts = [b["text"] for m in body["messages"] for b in m["content"] if "text" in b]
    prompt_tokens = sum(len(t.split()) for t in texts) + sum(len(s["text"].split()) for s in body.get("system", []))
    tools = body.get("toolConfig", {}).get("tools", [])
    results = [b["toolResult"] for b in last["content"] if "toolResult" in b]
    if tools and not results:
        name = tools[0]["toolSpec"]["name"]
        use = {"toolUseId": "tooluse_d0uble01", "name": name, "input": {"city": "Paris", "unit": "celsius"}}
        blocks: list[dict[str, Any]] = [{"text": "Let me check."}, {"toolUse": use}]
        return blocks, "tool_use", {"inputTokens": prompt_tokens, "outputTokens": 9, "totalTokens": prompt_tokens + 9}
    if results:
        said = " ".join(c.get("text", "") for c in results[0]["content"])
        words = f"The tool {results[0]['toolUseId']} said: {said}".split(" ")
    else:
        words = f"Hello from {model}, you said: {texts[-1] if texts else ''}".split(" ")
    stop = "end_turn"
    limit = body.get("inferenceConfig", {}).get("maxTokens")
    if limit is not None and limit < len(words):
        words, stop = words[:limit], "max_tokens"
    usage = {"inputTokens": prompt_tokens, "outputTokens": len(words), "totalTokens": prompt_tokens + len(words)}
    return [{"text": " ".join(words)}], stop, usage


def stream_frames(model: str, blocks: list[dict[str, Any]], stop: str, usage: dict[str, int]) -> list[bytes]:
    frames = [event("messageStart", {"role": "assistant"})]
    for index, block in enumerate(blocks):
        if "text" in block:
            words = block["text"].split(" ")
            for n, word in enumerate(words):
                piece = word if n == 0 else " " + word
                frames.append(event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece},
                                                          "p": "abcdefgh"}))
                if "stream-error" in model and n == 2:
                    return [*frames, exception("modelStreamErrorException", "The model stopped unexpectedly.")]
        else:
            use = block["toolUse"]
            frames.append(event("contentBlockStart", {"contentBlockIndex": index, "start": {
                "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}}))
            arguments = json.dumps(use["input"])
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                frames.append(event("contentBlockDelta", {"contentBlockIndex": index,
                                                          "delta": {"toolUse": {"input": part}}}))
        frames.append(event("contentBlockStop", {"contentBlockIndex": index}))
    frames.append(event("messageStop", {"stopReason": stop}))
    frames.append(event("metadata", {"usage": usage, "metrics": {"latencyMs": 12}}))
    return frames


def _error(status: int, name: str, message: str) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
    headers = [(b"content-type", b"application/json"), (b"x-amzn-errortype", f"{name}:http://internal.amazon.com/".encode()),
               (b"x-amzn-requestid", b"req-err")]
    return status, headers, [json.dumps({"message": message}).encode()]


def handle(method: str, raw_path: str, host: str, headers: dict[str, str], data: bytes,
           ) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
    """(status, headers, body parts) for one request."""
    parts = raw_path.split("/")
    if method != "POST" or len(parts) != 4 or parts[1] != "model" or parts[3] not in ("converse", "converse-stream"):
        return _error(404, "UnknownOperationException", f"no such operation: {method} {raw_path}")
    problem = verify_signature(method, f"http://{host}{raw_path}", headers, data)
    if problem is not None:
        return _error(403, "InvalidSignatureException", problem)
    model = unquote(parts[2])
    try:
        body = json.loads(data)
        SEEN.append({"path": raw_path, "model": model, "headers": headers, "body": body})
        check_request(body)
        for word, error in _ERRORS.items():
            if word in model:
                raise Rejected(*error)
    except Rejected as exc:
        return _error(exc.status, exc.name, exc.message)
    blocks, stop, usage = answer_of(model, body)
    ok = [(b"x-amzn-requestid", b"req-0001")]
    if parts[3] == "converse":
        answer = {"output": {"message": {"role": "assistant", "content": blocks}}, "stopReason": stop,
                  "usage": usage, "metrics": {"latencyMs": 12}}
        return 200, [(b"content-type", b"application/json"), *ok], [json.dumps(answer).encode()]
    frames = stream_frames(model, blocks, stop, usage)
    if headers.get("x-double-writes") == "frames":  # each event its own write, as Bedrock sends them
        return 200, [(b"content-type", b"application/vnd.amazon.eventstream"), *ok], frames
    stream = b"".join(frames)
    # written in pieces that cut frames: the gateway's decoder must carry a partial frame to the next read
    cuts = [stream[i:i + 37] for i in range(0, min(len(stream), 111), 37)] + [stream[111:]]
    return 200, [(b"content-type", b"application/vnd.amazon.eventstream"), *ok], [c for c in cuts if c]


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
              send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """The double as an ASGI app (a real server, or run in process)."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/_seen":  # for tests against the double as a server
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(SEEN[-1:]).encode()})
        return
    data = b""
    while True:
        message = await receive()
        data += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    status, out_headers, parts = handle(scope["method"], raw_path, headers.get("host", ""), headers, data)
    await send({"type": "http.response.start", "status": status, "headers": out_headers})
    for n, part in enumerate(parts):
        await send({"type": "http.response.body", "body": part, "more_body": n < len(parts) - 1})


def in_process() -> Any:
    """A handler for tests.inprocess' FakeUpstream: the double's app run in process, the path as sent and the
    host of the URL (what a real client puts in `host`) given to it."""
    from urllib.parse import urlsplit

    from tests.inprocess.upstream import Reply, Sent, run_asgi

    async def handler(sent: Sent) -> Reply:
        parts = urlsplit(sent.url)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in sent.headers.items()]
        scope = {"type": "http", "method": sent.method, "path": unquote(parts.path),
                 "raw_path": parts.path.encode(), "query_string": b"",
                 "headers": [(b"host", parts.netloc.encode()), *headers]}
        return await run_asgi(app, scope, sent.body)

    return handler


@contextlib.contextmanager
def run_bedrock_double() -> Iterator[str]:
    """Serve the double with granian on 127.0.0.1 (a free port) in a subprocess; yield its base URL."""
    from tests.upstream_double import _answers, _stderr, free_port, importable_env, stop_process

    port = free_port()
    cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
           "--no-log", "tests.bedrock_double:app"]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=importable_env(dict(os.environ)), stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while not _answers(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Bedrock double did not start:\n{_stderr(err)}")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(proc)
