"""`POST /v1/token-count`: prompt tokens counted with tiktoken (the model's encoding, else o200k_base).

Body: `{"model": ..., "messages": [...], "tools": [...]}` (a chat prompt, counted by OpenAI's published
recipe) or `{"model": ..., "text": "..."}` (plain text). Answer: `{"model", "encoding", "prompt_tokens"}`.
Bad input is a 400 that names the field, never a 500. tiktoken is imported on the first call only.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from llmgate.errors import InvalidRequest
from llmgate.proxy.asgi import JSON_CONTENT_TYPE, Send, send_response

# Counting is CPU work: past this many body bytes it runs in a thread so the event loop keeps serving.
THREAD_THRESHOLD_BYTES = 64 * 1024
_encode = msgspec.json.Encoder().encode


def count_prompt(request: Any) -> dict[str, Any]:
    """Validate a token-count request and count it; `InvalidRequest` names what is wrong."""
    from llmgate.usage.counting import count_chat_prompt_tokens, count_text_tokens, encoding_for_model

    if not isinstance(request, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("You must provide a model parameter.", param="model")
    has_messages, has_text = request.get("messages") is not None, request.get("text") is not None
    if has_messages == has_text:
        raise InvalidRequest("Provide either `messages` (with optional `tools`) or `text`.", param="messages")
    if has_text and request.get("tools") is not None:
        raise InvalidRequest("`tools` can only be counted with `messages`.", param="tools")
    try:
        if has_text:
            tokens = count_text_tokens(request["text"], model)
        else:
            tokens = count_chat_prompt_tokens(request["messages"], model, request.get("tools"))
    except ValueError as exc:
        where = str(exc).split(" ", 1)[0]  # counting's messages name the item: "messages[2].content must be ..."
        param = where if where.startswith(("messages", "tools", "text")) else None
        raise InvalidRequest(str(exc), param=param) from None
    return {"model": model, "encoding": encoding_for_model(model).name, "prompt_tokens": tokens}


async def serve_token_count(send: Send, raw: bytes, request_id: bytes) -> None:
    """Answer a token-count request whose body has been read."""
    try:
        request = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request: {exc}.") from None
    if len(raw) > THREAD_THRESHOLD_BYTES:
        result = await asyncio.to_thread(count_prompt, request)
    else:
        result = count_prompt(request)
    await send_response(send, 200, [JSON_CONTENT_TYPE, (b"x-request-id", request_id)], _encode(result))
