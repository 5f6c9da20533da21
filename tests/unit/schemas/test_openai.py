"""The OpenAI wire view (schemas/openai.py): a body's model renamed, everything else kept as it came."""

from __future__ import annotations

import pytest

from llmgate.errors import InvalidRequest
from llmgate.schemas.openai import replace_model


def test_replace_model_keeps_everything_else() -> None:
    body = b'{"messages": [{"role": "user", "content": "\\"model\\": x"}], "model": "alias", "n": 1}'
    assert replace_model(body, "up/name") == \
        b'{"messages":[{"role": "user", "content": "\\"model\\": x"}],"model":"up/name","n":1}'


def test_replace_model_refuses_a_key_that_is_no_utf8() -> None:
    """The routing view skips other keys unread; renaming decodes them, and a bad one is the client's 400."""
    with pytest.raises(InvalidRequest) as info:
        replace_model(b'{"model":"alias","\xff":1}', "up/name")
    assert info.value.status == 400 and "UTF-8" in info.value.message
