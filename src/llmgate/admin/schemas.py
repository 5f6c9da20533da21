"""Wire Structs of the management API: requests refuse unknown fields; responses never carry a secret twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from llmgate.log import mask_secret
from llmgate.store.base import Project, Token

_TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=_TEXT)]
Text = Annotated[str, Meta(max_length=10_000, pattern=_TEXT)]
ModelName = Annotated[str, Meta(min_length=1, max_length=200, pattern=_TEXT)]
Secret = Annotated[str, Meta(min_length=1, max_length=4096, pattern=_TEXT)]
Count = Annotated[int, Meta(ge=1, le=2**53)]
Timestamp = Annotated[float, Meta(ge=0, le=1e11)]
Money = Annotated[float, Meta(gt=0, le=1e12)]
Metadata = Annotated[dict[str, Any], Meta(max_length=100)]


class ProjectCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    description: Text = ""
    metadata: Metadata = {}
    allowed_models: list[ModelName] = []
    """Models the project's tokens may use; empty means any."""
    upstream_keys: dict[Name, Secret] = {}
    """Provider name → the project's own key for it (needs LLMGATE_SECRET_KEY; stored encrypted)."""


class ProjectUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET
    allowed_models: list[ModelName] | UnsetType = UNSET
    upstream_keys: dict[Name, Secret] | UnsetType = UNSET
    """Replaces all of the project's upstream keys ({} removes them)."""


class ProjectOut(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["project"] = "project"
    name: str
    description: str
    metadata: dict[str, Any]
    allowed_models: list[str]
    upstream_keys: dict[str, str]
    """Provider name → the key, masked."""
    created_at: float
    updated_at: float


class TokenCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    project_id: Name
    name: Text = ""
    expires_at: Timestamp | None = None
    """Unix time (seconds) after which the token is refused."""
    max_requests: Count | None = None
    rpm_limit: Count | None = None
    tpm_limit: Count | None = None
    budget_tokens: Count | None = None
    budget_cost: Money | None = None
    """Most it may spend, in the currency of the gateway's `[prices]` (requests for unpriced models cost 0)."""
    allowed_models: list[ModelName] = []
    """A subset of the project's allowed models; empty means the project's."""


class TokenUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Each field given replaces the current value; null removes a limit."""

    name: Text | UnsetType = UNSET
    expires_at: Timestamp | UnsetType | None = UNSET
    max_requests: Count | UnsetType | None = UNSET
    rpm_limit: Count | UnsetType | None = UNSET
    tpm_limit: Count | UnsetType | None = UNSET
    budget_tokens: Count | UnsetType | None = UNSET
    budget_cost: Money | UnsetType | None = UNSET
    allowed_models: list[ModelName] | UnsetType = UNSET


_METERED = ("LLM tokens (cost) of this token's answers, counted while it has a tpm_limit, budget_tokens or "
            "budget_cost, while the gateway logs usage or runs with LLMGATE_METER_EVERY_TOKEN=1, and when a "
            "deployment with a tpm limit serves it; other answers are not metered.")


class TokenOut(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["token"] = "token"
    project_id: str
    name: str
    prefix: str
    is_active: bool
    expires_at: float | None
    max_requests: int | None
    request_count: int
    rpm_limit: int | None
    tpm_limit: int | None
    budget_tokens: int | None
    tokens_used: Annotated[int, Meta(description=_METERED)]
    budget_cost: float | None
    cost_used: Annotated[float, Meta(description=_METERED)]
    allowed_models: list[str]
    created_at: float
    updated_at: float
    last_used_at: float | None
    revoked_at: float | None


class TokenCreated(TokenOut, kw_only=True):
    secret: str
    """The token itself: shown this once, never stored."""


class Deleted(msgspec.Struct, kw_only=True):
    id: str
    object: str
    deleted: bool = True
    revoked_tokens: int = 0


def changes_of(update: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body gave."""
    return {f: v for f in update.__struct_fields__ if (v := getattr(update, f)) is not UNSET}


def project_out(project: Project, decrypt: Callable[[str], str | None]) -> ProjectOut:
    keys = {name: mask_secret(decrypt(enc)) if decrypt(enc) else "<undecryptable>"
            for name, enc in project.upstream_keys.items()}
    return ProjectOut(id=project.id, name=project.name, description=project.description, metadata=project.metadata,
                      allowed_models=list(project.allowed_models), upstream_keys=keys,
                      created_at=project.created_at, updated_at=project.updated_at)


def token_out(token: Token, secret: str | None = None) -> TokenOut:
    fields = {f: getattr(token, f) for f in TokenOut.__struct_fields__ if f != "object"}
    fields["allowed_models"] = list(token.allowed_models)
    return TokenCreated(**fields, secret=secret) if secret else TokenOut(**fields)
