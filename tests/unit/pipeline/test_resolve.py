"""The resolve step (pipeline/resolve.py): which deployments serve a request and how (passed through, translated
either way, or answered by llmgate), and which check a virtual token gets. Pure: no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmgate.config import load_settings
from llmgate.errors import InvalidRequest, ModelNotFound
from llmgate.pipeline.dialects import ANTHROPIC, OPENAI
from llmgate.pipeline.endpoints import build_endpoints, find_endpoint, find_routes
from llmgate.pipeline.local import answer_count_tokens, answer_models
from llmgate.pipeline.request import V1Request
from llmgate.pipeline.resolve import Answered, Forwarded, resolve
from llmgate.proxy.headers import split_request_headers
from llmgate.proxy.translated import TranslatedCall
from llmgate.upstreams import Upstreams
from llmgate.usage.event import Exchange

CONFIG = """
[[providers]]
name = "claude"
kind = "anthropic"
base_url = "http://claude.test"
models = ["claude-*"]

[[providers]]
name = "openai"
base_url = "http://openai.test/v1"
"""
ENDPOINTS = build_endpoints(("POST /v1/moderations",))


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Upstreams:
    path: Path = tmp_path_factory.mktemp("resolve") / "llmgate.toml"
    path.write_text(CONFIG)
    return Upstreams(load_settings({"LLMGATE_CONFIG": str(path)}), {})


def plan(upstreams: Upstreams, path: str, model: str | None, body: bytes = b"{}", method: str = "POST"):  # type: ignore[no-untyped-def]
    routes = find_routes(ENDPOINTS, path)
    scope = {"method": method, "headers": [], "query_string": b""}
    exchange = Exchange(b"r", method, "/v1" + path)
    request = V1Request(scope, None, None, None, split_request_headers([]), exchange, path, method)  # type: ignore[arg-type]
    request.dialect = routes.dialect if routes is not None else OPENAI
    request.model, request.body = model, body
    return request, resolve(request, find_endpoint(routes, method, path), upstreams)


def test_a_model_of_the_callers_dialect_is_passed_through(upstreams: Upstreams) -> None:
    _, chat = plan(upstreams, "/chat/completions", "gpt-4o")
    assert isinstance(chat, Forwarded) and type(chat.call) is not TranslatedCall and chat.admit == "request"
    assert chat.route.entries[0][0].provider.name == "openai" and chat.call.capability == "chat"
    _, messages = plan(upstreams, "/messages", "claude-x", b'{"model":"claude-x","messages":[],"max_tokens":1}')
    assert isinstance(messages, Forwarded) and type(messages.call) is not TranslatedCall
    assert messages.route.entries[0][0].provider.name == "claude" and messages.call.capability == "messages"


def test_the_other_dialects_model_is_translated(upstreams: Upstreams) -> None:
    body = b'{"model":"claude-x","messages":[{"role":"user","content":"hi"}]}'
    _, chat = plan(upstreams, "/chat/completions", "claude-x", body)
    assert isinstance(chat, Forwarded) and isinstance(chat.call, TranslatedCall)
    assert chat.call.path == "/messages" and chat.call.translation.request["max_tokens"] > 0
    body = b'{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
    request, messages = plan(upstreams, "/messages", "gpt-4o", body)
    assert request.dialect is ANTHROPIC
    assert isinstance(messages, Forwarded) and isinstance(messages.call, TranslatedCall)
    assert messages.call.path == "/chat/completions"
    assert messages.call.error_frame is ANTHROPIC.error_frame  # a failing stream ends the Anthropic way


def test_count_tokens_is_forwarded_to_anthropic_and_answered_here_for_the_others(upstreams: Upstreams) -> None:
    _, native = plan(upstreams, "/messages/count_tokens", "claude-x")
    assert isinstance(native, Forwarded) and native.admit == "model"  # counting is free: no limits counted
    _, local = plan(upstreams, "/messages/count_tokens", "gpt-4o")
    assert local == Answered(answer_count_tokens, admit="model")


def test_llmgates_own_answers_need_no_deployment(upstreams: Upstreams) -> None:
    _, models = plan(upstreams, "/models", None, method="GET")
    assert models == Answered(answer_models)


def test_a_body_naming_no_model_goes_to_the_default_route(upstreams: Upstreams) -> None:
    _, moderation = plan(upstreams, "/moderations", None)
    assert isinstance(moderation, Forwarded) and moderation.route is upstreams.table.default_route


def test_what_cannot_be_served_is_refused(upstreams: Upstreams) -> None:
    with pytest.raises(ModelNotFound, match="does not support /v1/embeddings"):  # no such capability there
        plan(upstreams, "/embeddings", "claude-x")
    with pytest.raises(InvalidRequest, match="not available for models served by an Anthropic provider"):
        plan(upstreams, "/moderations", "claude-x")  # an extra route: passed through, which Anthropic cannot take
    with pytest.raises(InvalidRequest):  # a translated request must be a JSON object
        plan(upstreams, "/chat/completions", "claude-x", b"[]")


def test_an_unknown_model_is_404_when_nothing_serves_every_model(tmp_path: Path) -> None:
    (tmp_path / "llmgate.toml").write_text('[[providers]]\nname = "only"\nbase_url = "http://only.test/v1"\n'
                                           'models = ["gpt-4o"]\n')
    upstreams = Upstreams(load_settings({"LLMGATE_CONFIG": str(tmp_path / "llmgate.toml")}), {})
    with pytest.raises(ModelNotFound):
        plan(upstreams, "/chat/completions", "gpt-5")
