"""llmgate's own answers when nothing can serve a request: they name the model the client asked for."""

from __future__ import annotations

import pytest

from llmgate.config import load_settings
from llmgate.errors import NoHealthyDeployment, RateLimited
from llmgate.proxy.attempt import Call
from llmgate.proxy.forward import _nothing_available
from llmgate.proxy.headers import split_request_headers
from llmgate.routing.keys import cool_down
from llmgate.upstreams import Upstreams
from llmgate.usage.event import Exchange


def call_for(router: Upstreams, model: str | None) -> Call:
    exchange = Exchange(b"rid", "POST", "/v1/chat/completions")
    return Call(router, None, None, "POST", "/chat/completions", "", split_request_headers([]), b"{}",  # type: ignore[arg-type]
                exchange, model, False, "chat")


@pytest.fixture
def router() -> Upstreams:
    """No config file: one provider from OPENAI_API_KEY, the catch-all (its route is named `*`)."""
    return Upstreams(load_settings({"OPENAI_API_KEY": "sk-up-0123456789abcdef"}), {})


def test_no_healthy_deployment_names_the_model_asked(router: Upstreams) -> None:
    route = router.table.resolve("gpt-x", "/chat/completions")
    assert route.name == "*"
    breaker = route.entries[0][0].breaker_for("gpt-x")
    for _ in range(router.table.routing.breaker_failures):
        breaker.record_failure(0.0)
    error = _nothing_available(call_for(router, "gpt-x"), route)
    assert isinstance(error, NoHealthyDeployment) and error.status == 503
    assert error.message == "No healthy deployment can serve `gpt-x` right now."
    unnamed = _nothing_available(call_for(router, None), router.table.default_route)  # e.g. a multipart body
    assert unnamed.message == "No healthy deployment can serve this request right now."


def test_every_key_rate_limited_names_the_model_asked(router: Upstreams) -> None:
    route = router.table.resolve("gpt-y", "/chat/completions")
    cool_down(route.entries[0][0].keys.keys[0], 1e12, 30)  # resting until long after the test
    error = _nothing_available(call_for(router, "gpt-y"), route)
    assert isinstance(error, RateLimited) and error.status == 429
    assert error.message.startswith("Every API key for `gpt-y` is rate limited; retry in ")
