"""The OpenAI wire view (schemas/openai.py): a body's model renamed, everything else kept as it came."""

from __future__ import annotations

from llmgate.schemas.openai import replace_model


def test_replace_model_keeps_everything_else() -> None:
    body = b'{"messages": [{"role": "user", "content": "\\"model\\": x"}], "model": "alias", "n": 1}'
    assert replace_model(body, "up/name") == \
        b'{"messages":[{"role": "user", "content": "\\"model\\": x"}],"model":"up/name","n":1}'
