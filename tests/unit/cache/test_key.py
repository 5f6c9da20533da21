"""The cache key (cache/key.py): the same answer-determining request gives the same key whatever the order of
its keys and the fields that do not change the answer; anything that changes the answer changes the key."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmgate.cache import key as key_module
from llmgate.cache.key import IGNORED_FIELDS, KeyMemo, KeyRequest, answer_headers, cache_key

name = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True).filter(lambda n: n not in IGNORED_FIELDS and n != "n")
value = st.recursive(st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(name, inner, max_size=3),
                     max_leaves=8)
bodies = st.dictionaries(name, value, min_size=1, max_size=5)
ignored = st.fixed_dictionaries({}, optional={"user": st.text(max_size=8), "metadata": st.dictionaries(name, value),
                                              "stream_options": st.just({"include_obfuscation": False}),
                                              "model": st.text(max_size=8)})
REQUEST = KeyRequest(endpoint="/v1/chat/completions", model="alias:gpt-4o", stream=False)


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with the keys of every object in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def encode(body: dict[str, Any], indent: int | None = None) -> bytes:
    return json.dumps(body, indent=indent).encode()


@settings(max_examples=60)
@given(bodies, ignored, st.randoms(use_true_random=False), st.sampled_from([None, 2]))
def test_key_order_whitespace_and_ignored_fields_do_not_change_the_key(body: dict[str, Any], extra: dict[str, Any],
                                                                       rng: random.Random,
                                                                       indent: int | None) -> None:
    same = shuffled({**body, **extra}, rng)
    assert cache_key(REQUEST, encode(body)) == cache_key(REQUEST, encode(same, indent))


@settings(max_examples=60)
@given(bodies, name, value)
def test_a_field_that_matters_changes_the_key(body: dict[str, Any], field: str, new: Any) -> None:
    changed = {**body, field: new}
    if changed != body:
        assert cache_key(REQUEST, encode(body)) != cache_key(REQUEST, encode(changed))


def test_the_endpoint_model_stream_scope_and_answer_headers_are_part_of_the_key() -> None:
    body = encode({"messages": [{"role": "user", "content": "hi"}]})
    keys = {cache_key(request, body) for request in (
        REQUEST,
        KeyRequest(endpoint="/v1/completions", model="alias:gpt-4o", stream=False),
        KeyRequest(endpoint="/v1/chat/completions", model="other:gpt-4o", stream=False),
        KeyRequest(endpoint="/v1/chat/completions", model="alias:gpt-4o", stream=True),
        KeyRequest(endpoint="/v1/chat/completions", model="alias:gpt-4o", stream=False, scope="proj_1"),
        KeyRequest(endpoint="/v1/chat/completions", model="alias:gpt-4o", stream=False,
                   headers=(("anthropic-beta", "x"),)),
    )}
    assert len(keys) == 6


def test_a_stream_asking_for_its_usage_chunk_is_another_answer() -> None:
    stream = KeyRequest(endpoint="/v1/chat/completions", model="m", stream=True)
    plain = encode({"messages": []})
    asked = encode({"messages": [], "stream_options": {"include_usage": True}})
    assert cache_key(stream, plain) != cache_key(stream, asked)
    assert cache_key(stream, plain) == cache_key(stream, encode({"messages": [], "stream_options": {}}))


def test_bodies_that_are_not_kept_have_no_key() -> None:
    assert cache_key(REQUEST, b"not json") is None
    assert cache_key(REQUEST, b"[1, 2]") is None
    assert cache_key(REQUEST, encode({"messages": [], "n": 2})) is None
    assert cache_key(REQUEST, encode({"messages": [], "n": 1})) is not None


def test_answer_headers_are_the_ones_that_change_the_answer_in_a_fixed_order() -> None:
    forward = [("openai-beta", "assistants=v2"), ("user-agent", "sdk"), ("anthropic-version", "2023-06-01")]
    assert answer_headers(forward) == (("anthropic-version", "2023-06-01"), ("openai-beta", "assistants=v2"))


@settings(max_examples=60)
@given(bodies, ignored, st.booleans(), st.sampled_from([None, 2]))
def test_the_memo_gives_the_key_cache_key_gives(body: dict[str, Any], extra: dict[str, Any], stream: bool,
                                                 indent: int | None) -> None:
    memo, request = KeyMemo(), KeyRequest(endpoint="/v1/chat/completions", model="m", stream=stream)
    raw = encode({**body, **extra}, indent)
    assert memo.key(request, raw) == cache_key(request, raw) == memo.key(request, raw)
    other = KeyRequest(endpoint="/v1/chat/completions", model="m", stream=stream, scope="proj_2")
    assert memo.key(other, raw) == cache_key(other, raw)  # the same bytes for another request: its own key


def test_a_body_seen_before_is_not_normalised_again_and_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    memo = KeyMemo(max_entries=3)
    bodies = [encode({"messages": [{"role": "user", "content": str(i)}]}) for i in range(4)]
    keys = [memo.key(REQUEST, body) for body in bodies[:3]]
    assert memo.key(REQUEST, encode({"messages": [], "n": 2})) is None and len(memo) == 3  # the oldest went

    def normalise(request: KeyRequest, body: bytes) -> str | None:
        raise AssertionError("normalised again")

    monkeypatch.setattr(key_module, "cache_key", normalise)
    assert [memo.key(REQUEST, body) for body in bodies[1:3]] == keys[1:]
    with pytest.raises(AssertionError, match="normalised again"):
        memo.key(REQUEST, bodies[0])
