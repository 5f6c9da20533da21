"""Wire Structs of the management API: requests refuse unknown fields; responses never carry a secret twice."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from llmgate.access.limits import Counters
from llmgate.access.periods import BudgetPeriod, window
from llmgate.log import mask_secret
from llmgate.store.base import LIMIT_FIELDS, Project, Token

_TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=_TEXT)]
Text = Annotated[str, Meta(max_length=10_000, pattern=_TEXT)]
ModelName = Annotated[str, Meta(min_length=1, max_length=200, pattern=_TEXT)]
Secret = Annotated[str, Meta(min_length=1, max_length=4096, pattern=_TEXT)]
Count = Annotated[int, Meta(ge=1, le=2**53)]
Timestamp = Annotated[float, Meta(ge=0, le=1e11)]
Money = Annotated[float, Meta(gt=0, le=1e12)]
Metadata = Annotated[dict[str, Any], Meta(max_length=100)]
Threshold = Annotated[float, Meta(gt=0, le=1, description=(
    "A fraction of each budget (0.8): past it, an alert (log line, metric, LLMGATE_ALERT_WEBHOOK_URL), once per "
    "period."))]
QueueMs = Annotated[int, Meta(ge=0, le=600_000, description=(
    "How long (ms) a request over rpm_limit/tpm_limit may wait for a slot, in arrival order, before its 429; 0: "
    "refused at once."))]


class PerUser(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What each end user of the project may use (the body's `user`, or the end-user header)."""

    rpm_limit: Count | None = None
    tpm_limit: Count | None = None
    max_requests: Count | None = None
    budget_tokens: Count | None = None
    budget_cost: Money | None = None


class ProjectCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    description: Text = ""
    metadata: Metadata = {}
    allowed_models: list[ModelName] = []
    """Models the project's tokens may use; empty means any."""
    upstream_keys: dict[Name, Secret] = {}
    """Provider name → the project's own key for it (needs LLMGATE_SECRET_KEY; stored encrypted)."""
    max_requests: Count | None = None
    """Across all the project's tokens, per period (`budget_period`)."""
    rpm_limit: Count | None = None
    tpm_limit: Count | None = None
    budget_tokens: Count | None = None
    budget_cost: Money | None = None
    budget_period: BudgetPeriod | None = None
    alert_threshold: Threshold | None = None
    queue_ms: QueueMs = 0
    per_user: PerUser = PerUser()


class ProjectUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    description: Text | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET
    allowed_models: list[ModelName] | UnsetType = UNSET
    upstream_keys: dict[Name, Secret] | UnsetType = UNSET
    """Replaces all of the project's upstream keys ({} removes them)."""
    max_requests: Count | UnsetType | None = UNSET
    rpm_limit: Count | UnsetType | None = UNSET
    tpm_limit: Count | UnsetType | None = UNSET
    budget_tokens: Count | UnsetType | None = UNSET
    budget_cost: Money | UnsetType | None = UNSET
    budget_period: BudgetPeriod | UnsetType | None = UNSET
    """Changing it starts a new period (the counts start again from zero)."""
    alert_threshold: Threshold | UnsetType | None = UNSET
    queue_ms: QueueMs | UnsetType = UNSET
    per_user: PerUser | UnsetType = UNSET
    """Replaces the per-user limits ({} removes them)."""


class Used(msgspec.Struct, kw_only=True):
    """One budget: what this period used of it (`limit` null: no such limit)."""

    used: float
    limit: float | None


class BudgetStatus(msgspec.Struct, kw_only=True):
    """The counts of the current period, and when they start again from zero."""

    period: str | None
    """`budget_period`; null: the budgets are for life (no reset)."""
    period_start: float | None
    resets_at: float | None
    requests: Used
    """Against `max_requests`."""
    tokens: Used
    """Against `budget_tokens`."""
    cost: Used
    """Against `budget_cost`."""


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
    max_requests: int | None
    rpm_limit: int | None
    tpm_limit: int | None
    budget_tokens: int | None
    budget_cost: float | None
    budget_period: str | None
    alert_threshold: float | None
    queue_ms: int
    per_user: dict[str, Any]
    budget: BudgetStatus


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
    budget_period: BudgetPeriod | None = None
    alert_threshold: Threshold | None = None
    queue_ms: QueueMs = 0


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
    budget_period: BudgetPeriod | UnsetType | None = UNSET
    """Changing it starts a new period (the counts start again from zero)."""
    alert_threshold: Threshold | UnsetType | None = UNSET
    queue_ms: QueueMs | UnsetType = UNSET


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
    budget_period: str | None
    alert_threshold: float | None
    queue_ms: int
    resets_at: float | None
    """When request_count, tokens_used and cost_used (this period's) start again from zero; null: never."""


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


def project_out(project: Project, decrypt: Callable[[str], str | None], now: float | None = None,
                live: Counters | None = None) -> ProjectOut:
    """The project as the API shows it; `live`: this instance's counters for it, fresher than the store's."""
    keys = {name: mask_secret(decrypt(enc)) if decrypt(enc) else "<undecryptable>"
            for name, enc in project.upstream_keys.items()}
    now = time.time() if now is None else now
    requests, tokens, cost = period_counts(project.budget_period, project.created_at, project.period_start,
                                           (project.request_count, project.tokens_used, project.cost_used), now, live)
    period = window(project.budget_period, project.created_at, now)
    budget = BudgetStatus(period=project.budget_period, period_start=period.start if project.budget_period else None,
                          resets_at=None if period.end == math.inf else period.end,
                          requests=Used(used=requests, limit=project.max_requests),
                          tokens=Used(used=tokens, limit=project.budget_tokens),
                          cost=Used(used=cost, limit=project.budget_cost))
    return ProjectOut(id=project.id, name=project.name, description=project.description, metadata=project.metadata,
                      allowed_models=list(project.allowed_models), upstream_keys=keys,
                      created_at=project.created_at, updated_at=project.updated_at,
                      **{f: getattr(project, f) for f in LIMIT_FIELDS},
                      per_user=msgspec.to_builtins(project.per_user), budget=budget)


def period_counts(period: str | None, anchor: float, stored_start: float, stored: tuple[int, int, float],
                  now: float, live: Counters | None = None) -> tuple[int, int, float]:
    """This period's requests, tokens and cost: the store's when they are this period's (zero otherwise), or this
    instance's counters when fresher."""
    start = window(period, anchor, now).start
    requests, tokens, cost = stored if stored_start == start else (0, 0, 0.0)
    if live is not None and live.period_start == start:
        requests, tokens = max(requests, live.request_count), max(tokens, live.tokens_used)
        cost = max(cost, live.cost_used)
    return requests, tokens, cost


def token_out(token: Token, secret: str | None = None, now: float | None = None,
              live: Counters | None = None) -> TokenOut:
    fields = {f: getattr(token, f) for f in TokenOut.__struct_fields__ if f not in ("object", "resets_at")}
    fields["allowed_models"] = list(token.allowed_models)
    now = time.time() if now is None else now
    fields["request_count"], fields["tokens_used"], fields["cost_used"] = period_counts(
        token.budget_period, token.created_at, token.period_start,
        (token.request_count, token.tokens_used, token.cost_used), now, live)
    end = window(token.budget_period, token.created_at, now).end
    fields["resets_at"] = None if end == math.inf else end
    return TokenCreated(**fields, secret=secret) if secret else TokenOut(**fields)
