"""Key rotation and cooldowns, with the clock passed in."""

from collections.abc import Iterator

import pytest

from llmgate.routing.keys import KeyRing, KeyState, cool_down, disable, parse_duration_s, retry_after_s
from tests.inprocess.gateway import Gateway, Response
from tests.inprocess.routed import ROUTED, ROUTED_KEYS
from tests.inprocess.upstream import double, reset_seen, seen


def ring(*secrets: str) -> KeyRing:
    return KeyRing(KeyState(s, (("authorization", f"Bearer {s}"),)) for s in secrets)


def test_least_recently_used_first() -> None:
    keys = ring("a", "b", "c")
    assert [keys.choose(0.0).secret for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]  # type: ignore[union-attr]


def test_a_resting_key_is_skipped_and_comes_back_first() -> None:
    keys = ring("a", "b", "c")
    a, b, c = keys.keys
    cool_down(b, now=10.0, seconds=5)
    assert [keys.choose(11.0) for _ in range(4)] == [a, c, a, c]
    assert keys.choose(15.0) is b  # back, and the least recently used
    assert b.rate_limits == 1


def test_cooldown_keeps_the_longer_rest() -> None:
    (key,) = ring("a").keys
    cool_down(key, 0.0, 60)
    cool_down(key, 1.0, 5)
    assert key.cooldown_until == 60.0


def test_all_resting_or_disabled() -> None:
    keys = ring("a", "b")
    a, b = keys.keys
    assert disable(a) is True and disable(a) is False  # logged once
    cool_down(b, 0.0, 30)
    assert keys.choose(1.0) is None and not keys.has_available(1.0)
    assert keys.next_available_at() == 30.0
    assert keys.choose_resting() is b  # the last resort never picks a disabled key
    disable(b)
    assert keys.choose_resting() is None and keys.next_available_at() is None


def test_single_key_fast_path() -> None:
    keys = ring("only")
    assert keys.choose(0.0) is keys.keys[0]
    cool_down(keys.keys[0], 0.0, 1)
    assert keys.choose(0.5) is None and keys.choose(1.0) is keys.keys[0]


def test_masked() -> None:
    assert KeyState("sk-proj-abcdefghijklmnop", ()).masked == "sk-****mnop"


@pytest.mark.parametrize(("value", "seconds"), [
    ("1", 1.0), ("0.5", 0.5), ("6m0s", 360.0), ("1.5s", 1.5), ("250ms", 0.25), ("1h2m3s", 3723.0), ("20ms", 0.02),
    ("", None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", None),
])
def test_parse_duration(value: str, seconds: float | None) -> None:
    assert parse_duration_s(value) == seconds


def test_retry_after_precedence() -> None:
    assert retry_after_s([(b"Retry-After", b"7"), (b"retry-after-ms", b"1500")]) == 1.5
    assert retry_after_s([(b"retry-after", b"7")]) == 7.0
    assert retry_after_s([(b"x-ratelimit-reset-requests", b"2s"), (b"x-ratelimit-reset-tokens", b"1m")]) == 60.0
    assert retry_after_s([(b"retry-after", b"Wed, 21 Oct 2015 07:28:00 GMT")]) is None
    assert retry_after_s([(b"content-type", b"application/json")]) is None


def test_a_retry_prefers_a_key_the_request_has_not_tried() -> None:
    keys = ring("a", "b", "c")
    a, b, c = keys.keys
    assert [keys.choose(0.0) for _ in range(3)] == [a, b, c]  # a is now the least recently used
    assert keys.choose(0.0, tried=[a]) is b  # not a, though a is older
    assert keys.choose(0.0, tried=[a, b, c]) is a  # all tried: the least recently used of them
    cool_down(b, 0.0, 30)
    assert keys.choose(1.0, tried=[a, c]) is c  # b rests: a tried key again (c, used before a) rather than none
    assert keys.choose(1.0, tried=[a]) is c  # c was used more recently than a, but a was tried


# Through the app, against the upstream double run in process.


@pytest.fixture(scope="module")
def keyed() -> Iterator[Gateway]:
    with Gateway(ROUTED, double()) as gw:
        yield gw


def chat(gw: Gateway, model: str, **headers: str) -> Response:
    return gw.post("/v1/chat/completions", json={"model": model, "messages": []}, headers=headers)


def test_keys_rotate_least_recently_used_first(keyed: Gateway) -> None:
    reset_seen()
    for _ in range(6):
        assert chat(keyed, "rotated").status_code == 200
    used = [r["auth"] for r in seen()["recent"]]
    assert sorted(used[:3]) == sorted(f"Bearer {k}" for k in ROUTED_KEYS)
    assert used[3:] == used[:3]


def test_a_429_rests_only_that_key(keyed: Gateway) -> None:
    reset_seen()
    response = chat(keyed, "rotated", **{"x-mock-status": "429", "x-mock-retry-after": "120"})
    # every key got its 429 in turn (retried on the next key), then the upstream's answer is passed on
    assert response.status_code == 429 and response.headers["x-llmgate-attempts"] == "3"
    keys = {k["key"]: k for k in keyed.health("rotating/upstream-name")["keys"]}
    assert all(k["state"] == "cooling_down" and k["cooling_down_for_s"] > 100 for k in keys.values())
    # with every key resting, a request still goes out once (the upstream decides) rather than being refused
    assert chat(keyed, "rotated").status_code == 200


def test_401_disables_the_key_and_logs_it_masked_once(keyed: Gateway) -> None:
    for _ in range(4):
        response = chat(keyed, "revoked")
        assert response.status_code == 200, response.text
    keys = keyed.health("revoking/revoked")["keys"]
    assert [k["state"] for k in keys] == ["disabled", "ok"]
    logs = keyed.logs()
    assert logs.count("rejected key sk-****0001 with 401") == 1
    assert "sk-revoked-key-0000000001" not in logs
