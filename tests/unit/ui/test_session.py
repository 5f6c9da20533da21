"""ui/session.py: signed session cookies, CSRF tokens, basic credentials, the failed sign-in throttle."""

from __future__ import annotations

import base64

from llmgate.ui.session import (
    SignInThrottle,
    csrf_token,
    is_basic_valid,
    is_csrf_valid,
    new_session,
    read_session,
    signing_key,
)

KEY = signing_key("management-token-0123456789")


def test_a_session_reads_back_until_it_expires() -> None:
    cookie, session = new_session(KEY, 1000.0, ttl_s=60)
    assert read_session(KEY, cookie, 1059.0) == session
    assert read_session(KEY, cookie, 1060.0) is None


def test_a_forged_or_foreign_cookie_is_refused() -> None:
    cookie, _ = new_session(KEY, 1000.0)
    payload, signature = cookie.split(".")
    longer = base64.urlsafe_b64encode(b'[99999999999,"x"]').rstrip(b"=").decode()
    assert read_session(KEY, f"{longer}.{signature}", 1000.0) is None
    assert read_session(signing_key("another-token-9876543210"), cookie, 1000.0) is None
    for junk in ("", "nodot", "a.b.c", f"{payload}.", "!!!.???"):
        assert read_session(KEY, junk, 1000.0) is None


def test_csrf_tokens_are_bound_to_the_session_and_the_key() -> None:
    token = csrf_token(KEY, "s1")
    assert is_csrf_valid(KEY, "s1", token)
    assert not is_csrf_valid(KEY, "s2", token)
    assert not is_csrf_valid(signing_key("another-token-9876543210"), "s1", token)
    assert not is_csrf_valid(KEY, "s1", None) and not is_csrf_valid(KEY, "s1", "")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_credentials_need_both_user_and_password() -> None:
    assert is_basic_valid(basic("ops", "pw:with:colons"), "ops", "pw:with:colons") == "ops"
    assert is_basic_valid(basic("ops", "wrong"), "ops", "pw") is None
    assert is_basic_valid(basic("other", "pw"), "ops", "pw") is None
    assert is_basic_valid(basic("ops", "pw"), None, None) is None  # not configured
    assert is_basic_valid("Basic %%%not-base64", "ops", "pw") is None
    assert is_basic_valid("Bearer x", "ops", "pw") is None


def test_the_throttle_makes_an_address_wait_after_repeated_failures() -> None:
    throttle = SignInThrottle(max_failures=3, window_s=60)
    for at in (0.0, 1.0, 2.0):
        assert throttle.wait_s("10.0.0.1", at) == 0
        throttle.failed("10.0.0.1", at)
    assert throttle.wait_s("10.0.0.1", 3.0) == 57.0
    assert throttle.wait_s("10.0.0.2", 3.0) == 0  # per address
    assert throttle.wait_s("10.0.0.1", 60.0) == 0  # the first failure left the window
    throttle.failed("10.0.0.1", 61.0)
    throttle.succeeded("10.0.0.1")
    assert throttle.wait_s("10.0.0.1", 62.0) == 0
