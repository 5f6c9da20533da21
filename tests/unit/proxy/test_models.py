"""A provider's own model list (proxy/models.py): its `data`, or an error naming the provider."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmgate.config import ProviderConfig, Timeouts
from llmgate.errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from llmgate.proxy.models import fetch_model_list
from tests.inprocess.upstream import FakeUpstream, Handler, Reply, hang, replies


def fetch(handler: Handler) -> Any:
    async def main() -> Any:
        provider = ProviderConfig(name="up", base_url="http://up.test/v1", timeouts=Timeouts(first_byte_s=0.05))
        client = FakeUpstream(provider, handler, sent := [])
        await client.open()
        result = await fetch_model_list(client, "/models", [("authorization", "Bearer sk-x")])
        assert sent[0].method == "GET" and sent[0].path == "/v1/models" and sent[0].key == "sk-x"
        return result

    return asyncio.run(main())


def test_the_models_it_lists() -> None:
    body = b'{"object":"list","data":[{"id":"a","object":"model"},{"id":"b","extra":1}]}'
    assert fetch(replies(Reply(200, body))) == [{"id": "a", "object": "model"}, {"id": "b", "extra": 1}]


@pytest.mark.parametrize(("answer", "error", "message"), [
    (Reply(500, b"{}"), UpstreamError, "The upstream provider `up` answered 500 to GET /models."),
    (Reply(200, b"<html>"), UpstreamError, "The upstream provider `up` sent an unreadable model list."),
    (Reply(200, b'{"data": "none"}'), UpstreamError, "The upstream provider `up` sent an unreadable model list."),
    (ConnectionRefusedError(), UpstreamUnreachable, "Could not reach the upstream provider `up`."),
    (None, UpstreamTimeout, "The upstream provider `up` did not answer in time."),
])
def test_what_goes_wrong_names_the_provider(answer: Reply | Exception | None, error: type[GatewayError],
                                            message: str) -> None:
    handler = (lambda _: hang()) if answer is None else replies(answer)
    with pytest.raises(error) as info:
        fetch(handler)
    assert info.value.message == message
