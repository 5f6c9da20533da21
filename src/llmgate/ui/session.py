"""Signed session cookies, CSRF tokens and the failed sign-in throttle: pure, the clock passed in.

The signing key is derived from the management token (HMAC-SHA256 with a fixed label): every worker and every
instance sharing the token accept each other's sessions with nothing more to configure, and changing the token
signs everyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import deque

import msgspec

SESSION_COOKIE = "llmgate_ui"
SESSION_TTL_S = 8 * 3600
MAX_FAILURES = 5
"""Failed sign-ins a client address may make within FAILURE_WINDOW_S before it must wait."""
FAILURE_WINDOW_S = 60.0
_MAX_ADDRESSES = 10_000  # bounded: a flood from many addresses must not grow memory without end


class Session(msgspec.Struct, frozen=True, array_like=True):
    """A signed-in browser: when the session ends (Unix seconds) and its id (what its CSRF token is bound to)."""

    expires_at: int
    session_id: str


def signing_key(management_token: str) -> bytes:
    """The UI's HMAC key, derived from the management token."""
    return hmac.new(management_token.encode(), b"llmgate admin UI session v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def new_session(key: bytes, now: float, ttl_s: int = SESSION_TTL_S) -> tuple[str, Session]:
    """A fresh session and its cookie value (`payload.signature`)."""
    session = Session(expires_at=int(now) + ttl_s, session_id=secrets.token_hex(16))
    payload = _b64(msgspec.json.encode(session))
    return f"{payload}.{_mac(key, payload)}", session


def read_session(key: bytes, cookie: str | None, now: float) -> Session | None:
    """The session a cookie carries, or None when it is missing, forged, malformed or expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    payload, signature = cookie.split(".")
    if not hmac.compare_digest(signature.encode(), _mac(key, payload).encode()):
        return None
    try:
        session = msgspec.json.decode(_unb64(payload), type=Session)
    except (ValueError, msgspec.DecodeError):
        return None
    return session if now < session.expires_at else None


def csrf_token(key: bytes, session_id: str) -> str:
    """The token every state-changing form carries: bound to the session, unknowable to another site."""
    return _mac(key, f"csrf:{session_id}")


def is_csrf_valid(key: bytes, session_id: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), csrf_token(key, session_id).encode())


def is_basic_valid(header: str | None, user: str | None, password: str | None) -> str | None:
    """The user an `Authorization: Basic` header signs in as, when both user and password match (each compared
    in constant time), else None; None too when basic auth is not configured."""
    if not user or not password or not header or header[:6].lower() != "basic ":
        return None
    try:
        given_user, _, given_password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return user if user_ok and password_ok else None


class SignInThrottle:
    """Failed sign-ins per client address: past MAX_FAILURES within FAILURE_WINDOW_S, the address waits."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def wait_s(self, address: str, now: float) -> float:
        """How long `address` must wait before its next attempt is looked at (0: it may try now)."""
        failures = self._failures.get(address)
        if failures is None:
            return 0.0
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return 0.0
        return failures[0] + self.window_s - now if len(failures) >= self.max_failures else 0.0

    def failed(self, address: str, now: float) -> None:
        if address not in self._failures and len(self._failures) >= _MAX_ADDRESSES:
            self._failures.clear()
        self._failures.setdefault(address, deque(maxlen=self.max_failures)).append(now)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
