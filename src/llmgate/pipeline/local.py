"""Answers llmgate gives itself: the model list, token counts (`/v1/token-count`, and Anthropic's
`count_tokens` for models an OpenAI-compatible provider serves, which has no counting endpoint).

tiktoken and the translators are imported on the first request that needs them, never by the passthrough.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec

from llmgate.errors import InvalidRequest, ModelNotFound
from llmgate.proxy.asgi import JSON_CONTENT_TYPE, send_response
from llmgate.schemas.openai import UNDECODABLE, undecodable

if TYPE_CHECKING:
    from llmgate.pipeline.request import V1Request
    from llmgate.upstreams import Upstreams

# Counting is CPU work: past this many body bytes it runs in a thread so the event loop keeps serving.
THREAD_THRESHOLD_BYTES = 64 * 1024
_encode = msgspec.json.Encoder().encode


async def _send_json(request: V1Request, body: bytes) -> None:
    await send_response(request.send, 200, [JSON_CONTENT_TYPE, (b"x-request-id", request.request_id)], body)
    request.exchange.status = 200


async def answer_models(request: V1Request, upstreams: Upstreams) -> None:
    """`GET /v1/models` (the declared models merged with the upstreams' lists) or `GET /v1/models/{id}`."""
    if request.path == "/models":
        models = await upstreams.catalog.list_models()
        await _send_json(request, _encode({"object": "list", "data": models}))
        return
    model_id = request.path[len("/models/"):]
    model = await upstreams.catalog.get_model(model_id)
    if model is None:
        raise ModelNotFound(f"The model `{model_id}` does not exist or you do not have access to it.",
                            param="model")
    await _send_json(request, _encode(model))


def decode_any(raw: bytes) -> Any:
    """The request body as JSON (nesting and UTF-8 checked); a 400 otherwise."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request: {exc}.") from None
    except UNDECODABLE as exc:
        raise undecodable(exc) from None


def decode_json(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object; a 400 otherwise."""
    request = decode_any(raw)
    if not isinstance(request, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return request


def count_prompt(request: Any) -> dict[str, Any]:
    """Validate a `/v1/token-count` request and count it; `InvalidRequest` names what is wrong.

    Body: `{"model", "messages", "tools"}` (a chat prompt, counted by OpenAI's published recipe) or
    `{"model", "text"}`. Answer: `{"model", "encoding", "prompt_tokens"}` (the model's encoding, else o200k_base).
    """
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


async def answer_token_count(request: V1Request, _: Upstreams) -> None:
    """`POST /v1/token-count`: prompt tokens counted with tiktoken."""
    raw = request.body
    assert isinstance(raw, bytes)
    body = decode_any(raw)
    result = await asyncio.to_thread(count_prompt, body) if len(raw) > THREAD_THRESHOLD_BYTES else count_prompt(body)
    await _send_json(request, _encode(result))


async def answer_count_tokens(request: V1Request, _: Upstreams) -> None:
    """Anthropic's `count_tokens` for a model on an OpenAI-compatible provider: tiktoken over the prompt as it
    would be translated."""
    from llmgate.translate.chat_to_messages import TranslationError
    from llmgate.translate.messages_to_chat import convert_messages, convert_tools
    from llmgate.usage.counting import count_chat_prompt_tokens

    assert isinstance(request.body, bytes)
    body: Any = decode_json(request.body)
    try:
        messages = convert_messages(body.get("system"), body.get("messages"))
        tools = convert_tools(body["tools"]) if body.get("tools") else None
        tokens = count_chat_prompt_tokens(messages, body["model"], tools)
    except TranslationError as exc:
        raise InvalidRequest(str(exc), param=exc.param) from None
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    await _send_json(request, b'{"input_tokens":%d}' % tokens)
