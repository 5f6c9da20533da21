"""The config's tables of who may call and within what: `[auth]` (JWT issuers) and `[projects.<id>]` (per end
user limits of a project)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from llmgate.config_types import Count, HttpUrl, OptionalHttpUrl

JwtAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
"""Asymmetric algorithms only: `none` and the HMAC ones (HS*) are refused, so a token signed with a public key
as an HMAC secret can never pass."""


class JwtConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One `[[auth.jwt]]` issuer whose bearer JWTs are accepted on /v1 (and on /manage with the admin claim)."""

    issuer: HttpUrl
    """The `iss` the tokens must carry, exactly; also where OIDC discovery looks when `jwks_url` is absent."""
    audiences: Annotated[tuple[str, ...], Meta(min_length=1, extra={"expected": "at least one audience"})]
    """A token's `aud` must name one of these."""
    jwks_url: OptionalHttpUrl = ""
    """The issuer's signing keys (a JWKS document); default: `jwks_uri` of the issuer's
    `/.well-known/openid-configuration`."""
    algorithms: Annotated[tuple[JwtAlgorithm, ...], Meta(min_length=1)] = ("RS256", "ES256", "EdDSA")
    """The signature algorithms accepted."""
    leeway_s: Annotated[float, Meta(ge=0, le=600)] = 30.0
    """Clock skew allowed on `exp`, `nbf` and `iat`."""
    project_claim: str = "llmgate_project"
    """The claim whose value names the caller's project (its id or its name)."""
    models_claim: str = ""
    """Optional: the claim listing the models this caller may use, within its project's (a list or a
    space-separated string, as OAuth scopes are)."""
    user_claim: str = "sub"
    """The claim recorded as the end user in usage."""
    admin_claim: str = ""
    """Optional: a token whose claim holds `admin_value` (or a list containing it) may use /manage."""
    admin_value: str = "admin"


class AuthConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The `[auth]` table: who else may call besides the master key and virtual tokens."""

    jwt: tuple[JwtConfig, ...] = ()


class PerUserConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """`[projects.<id>.per_user]`: what each end user of the project may use (within the project's limits);
    the management API's `per_user`, when set on the project, wins."""

    rpm_limit: Count | None = None
    tpm_limit: Count | None = None
    max_requests: Count | None = None
    budget_tokens: Count | None = None
    budget_cost: Annotated[float, Meta(gt=0)] | None = None
    """In the currency of `[prices]`; the budgets reset with the project's `budget_period`."""


class ProjectConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """`[projects.<id>]`: settings of a project (created through the management API) kept in the config."""

    per_user: PerUserConfig = PerUserConfig()
