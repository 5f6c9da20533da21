"""Bearer JWTs from the `[[auth.jwt]]` issuers: verified with PyJWT against the issuer's keys (access/jwks.py),
mapped to a project (its models, upstream keys, limits and budgets), an end user, and whether the caller may use
/manage.

A verified token is remembered by its raw string until it expires (a bounded LRU), so a caller sending the same
token again costs a dict lookup, not a signature check. A refusal says precisely why, in `error.code`
(`jwt_expired`, `jwt_wrong_audience`, `jwt_wrong_issuer`, `jwt_bad_signature`, `jwt_alg_not_allowed`,
`jwt_unknown_kid`, `jwt_missing_project`, `jwt_unknown_project`, `jwt_invalid`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from jwt import exceptions as jwt_errors

from llmgate.access.jwks import IssuerKeys
from llmgate.access.token_entry import TokenEntry
from llmgate.access.tokens import TokenCache
from llmgate.config_access import JwtConfig
from llmgate.errors import Unauthorized
from llmgate.store.base import Project

MAX_CACHED = 10_000
"""Verified tokens remembered; the least recently used goes first."""
_ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})


class JwtRefused(Unauthorized):
    """401 for a JWT, with the precise reason in `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class JwtCaller:
    """What a verified token says: its issuer's config, subject, end user, project, models, admin role."""

    __slots__ = ("config", "entry", "expires_at", "is_admin", "issuer", "kid", "models", "project_ref", "subject",
                 "user")

    def __init__(self, config: JwtConfig, claims: dict[str, Any], kid: str | None) -> None:
        self.config = config
        self.issuer = config.issuer
        self.kid = kid
        self.subject = _text(claims.get("sub"))
        self.user = _text(claims.get(config.user_claim))
        self.project_ref = _text(claims.get(config.project_claim))
        self.models = _models(claims.get(config.models_claim)) if config.models_claim else None
        self.is_admin = bool(config.admin_claim) and _holds(claims.get(config.admin_claim), config.admin_value)
        self.expires_at = float(claims["exp"]) + config.leeway_s
        self.entry: TokenEntry | None = None
        """The project's entry, set once the project is found (for /v1)."""


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") and not isinstance(value, dict | list) else None


def _models(value: Any) -> frozenset[str] | None:
    """A list of model names, or a space-separated string (as an OAuth `scope` is); None without the claim (the
    project's models); anything else allows no model."""
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(str(v) for v in value)
    return frozenset()


def _holds(value: Any, wanted: str) -> bool:
    if isinstance(value, list):
        return wanted in value
    if isinstance(value, str):
        return value == wanted or wanted in value.split()
    return False


class JwtAuth:
    """Verifies bearer JWTs and maps them to their project's entry; one per gateway (`Services`)."""

    def __init__(self, configs: tuple[JwtConfig, ...], tokens: TokenCache, entry_ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`tokens`: the token cache, whose store holds the projects and whose project entries (limits, budgets,
        counts) a JWT caller shares with the project's tokens."""
        self._client: httpx.AsyncClient | None = None
        self.issuers = {c.issuer: IssuerKeys(c, self._http, clock) for c in configs}
        self.has_admin_claim = any(c.admin_claim for c in configs)
        """Some issuer's tokens can carry the admin role: /manage accepts JWTs."""
        self.tokens = tokens
        self.store = tokens.store
        self.keybox = tokens.keybox
        self.entry_ttl_s = entry_ttl_s
        self._verified: OrderedDict[str, JwtCaller] = OrderedDict()
        self._entries: dict[tuple[str, frozenset[str] | None], TokenEntry] = {}
        self._loading: dict[tuple[str, frozenset[str] | None], asyncio.Future[TokenEntry]] = {}

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(5.0), follow_redirects=True)
        return self._client

    async def open(self) -> None:
        """Fetch every issuer's keys once (an unreachable issuer is logged; its tokens wait for a refresh)."""
        await asyncio.gather(*(keys.refresh() for keys in self.issuers.values()))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def status(self) -> dict[str, str]:
        """Each issuer's key source: `ok`, `stale: ...` (an outage, cached keys in use), ... (for /health)."""
        return {issuer: keys.status() for issuer, keys in self.issuers.items()}

    def lookup(self, token: str, now: float) -> JwtCaller | None:
        """A token verified before and not expired, whose project entry is fresh: the hot path's dict lookup.
        None when `verify` must run; JwtRefused when it has expired since."""
        caller = self._cached(token, now)
        if caller is None:
            return None
        self._verified.move_to_end(token)
        entry = caller.entry
        if entry is None or now - entry.loaded_at >= self.entry_ttl_s:
            return None
        return caller

    def _cached(self, token: str, now: float) -> JwtCaller | None:
        caller = self._verified.get(token)
        if caller is not None and now >= caller.expires_at:
            del self._verified[token]
            raise JwtRefused("jwt_expired", "The JWT has expired.")
        return caller

    async def verify(self, token: str, now: float, *, for_v1: bool = True) -> JwtCaller:
        """Check the token (signature, issuer, audience, times) and, for /v1, find its project; remember it."""
        caller = self._cached(token, now)
        if caller is None:
            caller = await self._decode(token)
            self._remember(token, caller)
        if for_v1:
            if caller.project_ref is None:
                raise JwtRefused("jwt_missing_project",
                                 f"The JWT has no `{caller.config.project_claim}` claim naming a project.")
            caller.entry = await self._project_entry(caller.project_ref, caller.models, now)
        return caller

    def _remember(self, token: str, caller: JwtCaller) -> None:
        if len(self._verified) >= MAX_CACHED:
            self._verified.popitem(last=False)
        self._verified[token] = caller

    async def reload_stale(self, now: float) -> None:
        """Read again the project entries past half their TTL (called with the periodic write-back), so that a
        steady caller never waits for the store; an entry whose project is gone is dropped."""
        for key, entry in list(self._entries.items()):
            if now - entry.loaded_at >= self.entry_ttl_s / 2 and key not in self._loading:
                with contextlib.suppress(JwtRefused):
                    await self._load_entry(key, now)

    def forget_project(self, project_id: str) -> None:
        """A project changed (models, keys, limits, budgets) or was deleted: its callers' entries are read again
        on their next request, as its tokens are, and take the project's entry as it is then."""
        for entry in self._entries.values():
            if entry.project_id == project_id:
                entry.loaded_at = -math.inf

    def forget_kids(self, issuer: str, kids: set[str | None]) -> None:
        """Keys left the issuer's JWKS: tokens they signed are verified again (and refused)."""
        for token, caller in list(self._verified.items()):
            if caller.issuer == issuer and caller.kid in kids:
                del self._verified[token]

    async def _decode(self, token: str) -> JwtCaller:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt_errors.PyJWTError as exc:
            raise JwtRefused("jwt_invalid", f"The bearer token is not a valid JWT: {exc}.") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in _ASYMMETRIC:
            raise JwtRefused("jwt_alg_not_allowed",
                             f"The JWT's algorithm {alg!r} is not allowed (none and HMAC algorithms never are).")
        iss = unverified.get("iss")
        keys = self.issuers.get(iss) if isinstance(iss, str) else None
        if keys is None:
            raise JwtRefused("jwt_wrong_issuer", f"The JWT's issuer {iss!r} is not trusted.")
        config = keys.config
        if alg not in config.algorithms:
            raise JwtRefused("jwt_alg_not_allowed", f"The JWT's algorithm {alg!r} is not allowed for its issuer.")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise JwtRefused("jwt_invalid", "The JWT's `kid` is not a string.")
        key = keys.key(kid)
        if key is None:
            removed = await keys.refresh()
            if removed:
                self.forget_kids(config.issuer, removed)
            key = keys.key(kid)
            if key is None:
                raise JwtRefused("jwt_unknown_kid", f"The JWT is signed with a key the issuer does not publish "
                                                    f"(kid {kid!r}).")
        claims = _check(token, key, alg, config)
        return JwtCaller(config, claims, kid)

    async def _project_entry(self, ref: str, models: frozenset[str] | None, now: float) -> TokenEntry:
        """The entry of the project `ref` names (id or name), narrowed to `models`; reloaded past its TTL."""
        key = (ref, models)
        entry = self._entries.get(key)
        if entry is not None and now - entry.loaded_at < self.entry_ttl_s:
            return entry
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load_entry(key, now))
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(pending)

    async def _load_entry(self, key: tuple[str, frozenset[str] | None], now: float) -> TokenEntry:
        ref, models = key
        project = await self._find_project(ref)
        if project is None:
            self._entries.pop(key, None)
            raise JwtRefused("jwt_unknown_project", f"The JWT names project {ref!r}, which does not exist.")
        limits = self.tokens.project_entry(project, self.tokens.clock())
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = TokenEntry.for_project(project, models, self.keybox, now, limits)
        else:
            entry.update_project(project, models, self.keybox, now, limits)
        return entry

    async def _find_project(self, ref: str) -> Project | None:
        project = await self.store.get_project(ref)
        if project is not None:
            return project
        return next((p for p in await self.store.list_projects() if p.name == ref), None)


_REFUSALS: tuple[tuple[type[Exception], str, str], ...] = (
    (jwt_errors.ExpiredSignatureError, "jwt_expired", "The JWT has expired."),
    (jwt_errors.InvalidAudienceError, "jwt_wrong_audience", "The JWT is not meant for this gateway (`aud`)."),
    (jwt_errors.InvalidIssuerError, "jwt_wrong_issuer", "The JWT's issuer is not trusted."),
    (jwt_errors.InvalidSignatureError, "jwt_bad_signature", "The JWT's signature does not verify."),
    (jwt_errors.InvalidAlgorithmError, "jwt_alg_not_allowed", "The JWT's algorithm does not match its key."),
    (jwt_errors.ImmatureSignatureError, "jwt_invalid", "The JWT is not valid yet (`nbf`/`iat`)."),
)


def _check(token: str, key: jwt.PyJWK, alg: str, config: JwtConfig) -> dict[str, Any]:
    """PyJWT's full check: signature, `exp` (required), `nbf`, `iat`, `iss`, `aud`, with the configured leeway."""
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg], audience=list(config.audiences),
                                            issuer=config.issuer, leeway=config.leeway_s,
                                            options={"require": ["exp", "iss", "aud"]})
    except jwt_errors.PyJWTError as exc:
        for kind, code, message in _REFUSALS:
            if isinstance(exc, kind):
                raise JwtRefused(code, message) from None
        if isinstance(exc, jwt_errors.MissingRequiredClaimError) and exc.claim == "aud":
            raise JwtRefused("jwt_wrong_audience", "The JWT has no `aud` claim.") from None
        raise JwtRefused("jwt_invalid", f"The JWT is not valid: {exc}.") from None
    return claims
