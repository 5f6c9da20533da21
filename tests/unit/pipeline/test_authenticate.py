"""The authenticate step (pipeline/authenticate.py): the caller's token set on the request and its ids on the
exchange, the time it took stamped; a refused caller a 401 before anything else happens."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from llmgate.access.authenticate import Authenticator
from llmgate.access.throttle import AuthThrottle
from llmgate.errors import Unauthorized
from llmgate.pipeline.authenticate import authenticate
from llmgate.pipeline.request import V1Request
from llmgate.proxy.headers import split_request_headers
from llmgate.usage.event import Exchange
from tests.inprocess.access import TOKENS_ENV, chat, new_token, until
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import reply_json
from tests.servers import MASTER_KEY


def request_with(*headers: tuple[bytes, bytes]) -> V1Request:
    scope: dict[str, Any] = {"method": "POST", "headers": list(headers)}
    exchange = Exchange(b"r", "POST", "/v1/chat/completions")
    inbound = split_request_headers(list(headers))
    return V1Request(scope, None, None, None, inbound, exchange, "/chat/completions", "POST")  # type: ignore[arg-type]


def test_the_master_key_has_no_token_and_the_time_is_stamped() -> None:
    request = request_with((b"authorization", f"Bearer {MASTER_KEY}".encode()))
    asyncio.run(authenticate(Authenticator(MASTER_KEY), request, AuthThrottle(20, 1.0)))
    assert request.entry is None and request.exchange.token_id is None
    assert request.exchange.auth_s > 0


@pytest.mark.parametrize("headers", [(), ((b"authorization", b"Bearer wrong"),), ((b"x-api-key", b"wrong"),)])
def test_a_wrong_or_missing_credential_is_401(headers: tuple[tuple[bytes, bytes], ...]) -> None:
    with pytest.raises(Unauthorized):
        asyncio.run(authenticate(Authenticator(MASTER_KEY), request_with(*headers), AuthThrottle(20, 1.0)))


def test_a_virtual_tokens_ids_go_with_its_request(tmp_path: Path) -> None:
    """In process: the usage event of a token's request names its project and token."""
    events = tmp_path / "events.jsonl"
    env = {**TOKENS_ENV, "LLMGATE_USAGE_JSONL": str(events), "LLMGATE_USAGE_FLUSH_S": "0.05"}
    with Gateway(env=env, upstream=lambda _: reply_json({"ok": True})) as gw:
        token = new_token(gw)
        response = chat(gw, token["secret"])
        assert response.status_code == 200
        event = until(gw, lambda: events.exists() and next(
            (e for e in map(json.loads, events.read_text().splitlines())
             if e["request_id"] == response.headers["x-request-id"]), None))
    assert (event["project_id"], event["token_id"]) == (token["project_id"], token["id"])
