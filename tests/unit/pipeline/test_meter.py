"""The meter step (pipeline/meter.py) in process: an answer is read for its LLM tokens only when someone needs
them counted; a stream metered is asked for its usage chunk, one not metered goes up as the client sent it."""

from __future__ import annotations

import json

import pytest

from llmgate.access.token_entry import TokenEntry
from llmgate.config import ServerConfig
from llmgate.pipeline.meter import counts_usage
from llmgate.store.base import Project, Token
from llmgate.store.crypto import KeyBox
from tests.inprocess.access import MANAGEMENT_TOKEN, chat, manage, new_token, until
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import DOUBLE_URL, double, seen


def _stored_after_write_back(gw: Gateway, token_id: str, requests: int) -> dict:  # type: ignore[type-arg]
    stored = until(gw, lambda: (t := manage(gw, "GET", f"/tokens/{token_id}").json())["request_count"] == requests
                   and t)
    assert stored, manage(gw, "GET", f"/tokens/{token_id}").json()
    return stored  # type: ignore[no-any-return]


@pytest.mark.parametrize("every", [False, True])
def test_a_token_without_token_limits_is_metered_only_with_meter_every_token(every: bool) -> None:
    # with the usage log off: it meters every request
    env = {"LLMGATE_MANAGEMENT_TOKEN": MANAGEMENT_TOKEN, "LLMGATE_USAGE_FLUSH_S": "0.05",
           "LLMGATE_METER_EVERY_TOKEN": "1" if every else "0", "LLMGATE_USAGE_LOG": "0",
           "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}
    body = {"model": "gpt-4o-mini", "messages": [], "stream": True}
    with Gateway(upstream=double(), env=env) as gateway:
        token = new_token(gateway, rpm_limit=1000, max_requests=1000)  # limits, but none on LLM tokens
        assert chat(gateway, token["secret"]).status_code == 200
        streamed = gateway.post("/v1/chat/completions", json=body, auth=False,
                                headers={"authorization": f"Bearer {token['secret']}"})
        assert streamed.status_code == 200 and b"[DONE]" in streamed.content
        sent_upstream = json.loads(seen()["last_body"])
        stored = _stored_after_write_back(gateway, token["id"], 2)
    # metered, the stream was asked for its usage chunk; not metered, it went to the upstream as the client sent it
    assert ("stream_options" in sent_upstream) is every
    assert stored["tokens_used"] == (35 + 31 if every else 0)  # the double's answer and stream: 35 and 31 tokens


def _entry(**limits: int | float) -> TokenEntry:
    token = Token(id="t", project_id="p", prefix="lg-…abcd", secret_hash="h", created_at=0.0, updated_at=0.0, **limits)
    return TokenEntry(token, Project(id="p", name="p", created_at=0.0, updated_at=0.0), KeyBox(None), 0.0)


@pytest.mark.parametrize(("limits", "counted"), [
    ({}, False),
    ({"max_requests": 5, "rpm_limit": 5}, False),  # limits on requests need no token counts
    ({"tpm_limit": 1000}, True),
    ({"budget_tokens": 1000}, True),
    ({"budget_cost": 1.0}, True),
])
def test_a_tokens_answers_are_metered_when_its_limits_count_llm_tokens(limits: dict[str, float],
                                                                       counted: bool) -> None:
    entry = _entry(**limits)
    no_log = ServerConfig(usage_log=False)
    assert counts_usage(entry, no_log) is counted
    assert counts_usage(entry, ServerConfig(usage_log=False, meter_every_token=True)) is True
    assert counts_usage(entry, ServerConfig(usage_log=True)) is True
    assert counts_usage(None, no_log) is False  # the master key: only for the usage log
    assert counts_usage(None, ServerConfig(usage_log=True)) is True
    assert ServerConfig().usage_log is True  # the default: usage is counted
