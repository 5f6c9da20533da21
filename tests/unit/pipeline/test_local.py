"""pipeline/local.count_prompt (/v1/token-count): validation and the encoding it reports; and `POST /v1/token-count`
through the app in process: chat prompts, tools and plain text counted with tiktoken, bad input a 400."""

from __future__ import annotations

import pytest

from llmgate.errors import InvalidRequest
from llmgate.pipeline.local import count_prompt
from llmgate.usage.counting import count_chat_prompt_tokens, count_text_tokens
from tests.inprocess.gateway import Gateway, Response
from tests.servers import MASTER_KEY


def test_text_and_encoding() -> None:
    assert count_prompt({"model": "gpt-3.5-turbo", "text": "hello there"}) == {
        "model": "gpt-3.5-turbo", "encoding": "cl100k_base",
        "prompt_tokens": count_text_tokens("hello there", "gpt-3.5-turbo")}


@pytest.mark.parametrize(("request_body", "param"), [
    ("text", None), ({"model": ""}, "model"), ({"model": 5, "text": "x"}, "model"),
    ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "m", "messages": [], "tools": ["x"]}, "tools[0]"),
])
def test_invalid_requests_name_the_field(request_body: object, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        count_prompt(request_body)
    assert info.value.param == param and info.value.status == 400


AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Count me, héhé 🙂"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def count(gateway: Gateway, body: object, headers: dict | None = None) -> Response:
    return gateway.post("/v1/token-count", json=body, headers=AUTH if headers is None else headers, auth=False)


@pytest.mark.parametrize(("model", "encoding"), [("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base"),
                                                 ("claude-x", "o200k_base"), ("no-such-model", "o200k_base")])
def test_chat_messages(double_gateway: Gateway, model: str, encoding: str) -> None:
    r = count(double_gateway, {"model": model, "messages": MESSAGES})
    assert r.status_code == 200 and r.headers["x-request-id"]
    assert r.json() == {"model": model, "encoding": encoding,
                        "prompt_tokens": count_chat_prompt_tokens(MESSAGES, model)}


def test_tools_and_text(double_gateway: Gateway) -> None:
    with_tools = count(double_gateway, {"model": "gpt-4o", "messages": MESSAGES, "tools": TOOLS})
    with_tools = with_tools.json()["prompt_tokens"]
    assert with_tools == count_chat_prompt_tokens(MESSAGES, "gpt-4o", TOOLS) > count_chat_prompt_tokens(MESSAGES,
                                                                                                        "gpt-4o")
    text = count(double_gateway, {"model": "gpt-4", "text": "hello world, " * 100}).json()
    assert text == {"model": "gpt-4", "encoding": "cl100k_base",
                    "prompt_tokens": count_text_tokens("hello world, " * 100, "gpt-4")}
    big = "lorem ipsum " * 10_000  # past the threshold: counted in a worker thread
    assert count(double_gateway, {"model": "gpt-4o", "text": big}).json()["prompt_tokens"] == count_text_tokens(big,
                                                                                                         "gpt-4o")


@pytest.mark.parametrize(("body", "param", "says"), [
    ([1, 2], None, "JSON object"),
    ({"messages": MESSAGES}, "model", "model parameter"),
    ({"model": "gpt-4o"}, "messages", "either"),
    ({"model": "gpt-4o", "messages": MESSAGES, "text": "x"}, "messages", "either"),
    ({"model": "gpt-4o", "text": "x", "tools": TOOLS}, "tools", "only be counted with"),
    ({"model": "gpt-4o", "text": 5}, "text", "text must be a string"),
    ({"model": "gpt-4o", "messages": "hi"}, "messages", "messages must be a list"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
     "messages[0].content[0].type", "not supported"),
    ({"model": "gpt-4o", "messages": [{"role": 5}]}, "messages[0].role", "must be a string"),
    ({"model": "gpt-4o", "messages": MESSAGES, "tools": {"a": 1}}, "tools", "tools must be a list"),
])
def test_bad_input_is_400(double_gateway: Gateway, body: object, param: str | None, says: str) -> None:
    r = count(double_gateway, body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and says in error["message"]


def test_not_json_auth_and_method(double_gateway: Gateway) -> None:
    r = double_gateway.post("/v1/token-count", content=b"{oops", headers=AUTH, auth=False)
    assert r.status_code == 400 and "could not parse" in r.json()["error"]["message"]
    assert count(double_gateway, {"model": "gpt-4o", "text": "x"}, headers={}).status_code == 401
    assert double_gateway.get("/v1/token-count", headers=AUTH, auth=False).status_code == 405
