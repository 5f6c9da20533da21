"""The failed-authentication throttle (access/throttle.py): the bucket itself with the clock passed in, then /v1
and /manage through the app in process (429 in the caller's shape, valid callers never slowed)."""

from __future__ import annotations

import pytest

from llmgate.access.throttle import AuthThrottle, client_address
from llmgate.errors import AuthThrottled
from tests.inprocess.gateway import AUTH, Gateway
from tests.inprocess.upstream import double

MANAGEMENT_TOKEN = "mt-throttle-test-0123456789"


def test_a_burst_then_one_attempt_a_second() -> None:
    throttle = AuthThrottle(burst=3, per_s=0.5)
    for _ in range(3):
        throttle.failed("10.0.0.1", now=100.0)
    with pytest.raises(AuthThrottled) as info:
        throttle.failed("10.0.0.1", now=100.0)
    assert info.value.status == 429 and info.value.headers == {"retry-after": "2"}
    throttle.failed("10.0.0.2", now=100.0)  # another address has its own bucket
    throttle.failed("10.0.0.1", now=102.0)  # two seconds at 0.5 a second: one attempt back
    with pytest.raises(AuthThrottled):
        throttle.failed("10.0.0.1", now=102.5)
    for _ in range(3):
        throttle.failed("10.0.0.1", now=200.0)  # full again after a long pause, never more than the burst


def test_off_at_zero_and_the_table_stays_bounded() -> None:
    off = AuthThrottle(burst=0, per_s=1.0)
    for _ in range(100):
        off.failed("10.0.0.1", now=0.0)
    assert len(off) == 0
    bounded = AuthThrottle(burst=1, per_s=1.0, max_addresses=100)
    for i in range(1000):
        bounded.failed(f"10.0.{i // 256}.{i % 256}", now=float(i))
    assert len(bounded) == 100
    with pytest.raises(AuthThrottled):  # the most recent addresses are the ones kept
        bounded.failed("10.0.3.231", now=999.0)


def test_the_peer_address_is_what_counts() -> None:
    assert client_address({"client": ("192.0.2.7", 5000), "headers": [(b"x-forwarded-for", b"1.2.3.4")]}) == \
        "192.0.2.7"
    assert client_address({}) == ""


@pytest.fixture
def gw() -> Gateway:
    return Gateway(upstream=double(), env={"LLMGATE_AUTH_FAIL_BURST": "3", "LLMGATE_AUTH_FAIL_PER_S": "0.01",
                                           "LLMGATE_MANAGEMENT_TOKEN": MANAGEMENT_TOKEN})


@pytest.mark.parametrize(("path", "anthropic"), [("/v1/chat/completions", False), ("/v1/messages", True)])
def test_v1_failures_past_the_burst_are_429_and_a_valid_key_still_passes(gw: Gateway, path: str,
                                                                          anthropic: bool) -> None:
    """Wrong keys were all answered 401 at full speed, however many."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    wrong = {"authorization": "Bearer sk-wrong"}
    with gw:
        assert [gw.post(path, json=body, headers=wrong).status_code for _ in range(3)] == [401] * 3
        throttled = gw.post(path, json=body, headers=wrong)
        assert throttled.status_code == 429 and throttled.headers["retry-after"] == "100"
        if anthropic:
            assert throttled.json()["error"]["type"] == "rate_limit_error"
        else:
            assert throttled.json()["error"] == {
                "message": "Too many failed authentications from this address; retry after 100 s.",
                "type": "requests", "param": None, "code": "too_many_failed_authentications"}
        assert gw.post(path, json=body, headers=AUTH).status_code == 200  # the master key from the same address
        assert gw.post(path, json=body, auth=False).status_code == 429  # no key at all is a failure too


def test_manage_shares_the_bucket(gw: Gateway) -> None:
    with gw:
        for _ in range(2):
            assert gw.get("/manage/projects", headers={"authorization": "Bearer nope"}).status_code == 401
        assert gw.post("/v1/chat/completions", json={"model": "m"}, auth=False).status_code == 401
        refused = gw.get("/manage/projects", headers={"authorization": "Bearer nope"})
        assert refused.status_code == 429 and refused.headers["retry-after"] == "100"
        assert refused.json()["error"]["code"] == "too_many_failed_authentications"
        valid = gw.get("/manage/projects", headers={"authorization": f"Bearer {MANAGEMENT_TOKEN}"})
        assert valid.status_code == 200
