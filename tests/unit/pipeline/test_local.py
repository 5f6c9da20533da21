"""pipeline/local.count_prompt (/v1/token-count): validation and the encoding it reports (no server needed)."""

from __future__ import annotations

import pytest

from llmgate.errors import InvalidRequest
from llmgate.pipeline.local import count_prompt
from llmgate.usage.counting import count_text_tokens


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
