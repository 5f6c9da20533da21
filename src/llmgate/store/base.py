"""The store contract: records and the protocol both backends implement, plus what they share (rows, opening)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from llmgate.store.audit import AuditEntry, AuditQuery
    from llmgate.store.usage import UsageGroup, UsageQuery
    from llmgate.usage.event import UsageEvent

LIMIT_FIELDS = ("max_requests", "rpm_limit", "tpm_limit", "budget_tokens", "budget_cost", "budget_period",
                "alert_threshold", "queue_ms")
"""What a token and a project may both limit (changing them reloads every cached token of the project)."""
PROJECT_COLUMNS = ("id", "name", "description", "metadata", "allowed_models", "upstream_keys", "created_at",
                   "updated_at", *LIMIT_FIELDS, "per_user", "request_count", "tokens_used", "cost_used",
                   "period_start")
TOKEN_COLUMNS = ("id", "project_id", "name", "prefix", "secret_hash", "expires_at", "is_active", "max_requests",
                 "request_count", "rpm_limit", "tpm_limit", "budget_tokens", "tokens_used", "allowed_models",
                 "created_at", "updated_at", "last_used_at", "revoked_at", "budget_cost", "cost_used",
                 "budget_period", "alert_threshold", "queue_ms", "period_start")
PROJECT_UPDATABLE = frozenset({"name", "description", "metadata", "allowed_models", "upstream_keys", *LIMIT_FIELDS,
                               "per_user", "period_start"})
TOKEN_UPDATABLE = frozenset({"name", "expires_at", "allowed_models", *LIMIT_FIELDS, "period_start"})
_JSON_COLUMNS = frozenset({"metadata", "allowed_models", "upstream_keys", "per_user"})


class StoreError(Exception):
    """A store operation failed for a reason the caller can act on."""


class Conflict(StoreError):
    """A unique value (a project's name) is taken."""


class UserLimits(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Limits each end user of a project gets (the `user` field or the end-user header), within the project's.
    Budgets reset with the project's `budget_period`."""

    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_requests: int | None = None
    budget_tokens: int | None = None
    budget_cost: float | None = None

    def is_set(self) -> bool:
        """Whether any limit is given."""
        return any(getattr(self, f) is not None for f in self.__struct_fields__)


class Project(msgspec.Struct, kw_only=True, frozen=True):
    """An application that gets tokens; `upstream_keys` maps a provider name to its key, encrypted. Its limits
    apply across all its tokens (each token's own limits apply as well); its counters are this period's."""

    id: str
    name: str
    description: str = ""
    metadata: dict[str, Any] = {}
    allowed_models: tuple[str, ...] = ()
    """Models its tokens may use; empty means any."""
    upstream_keys: dict[str, str] = {}
    created_at: float
    updated_at: float
    max_requests: int | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    budget_tokens: int | None = None
    budget_cost: float | None = None
    budget_period: str | None = None
    """access/periods.py; None: the budgets and max_requests are for the project's life."""
    alert_threshold: float | None = None
    """A fraction of a budget (0.8) past which an alert goes out, once per period."""
    queue_ms: int = 0
    """How long a request over rpm_limit/tpm_limit may wait for a slot; 0: refused at once."""
    per_user: UserLimits = UserLimits()
    request_count: int = 0
    tokens_used: int = 0
    cost_used: float = 0.0
    period_start: float = 0.0
    """The start of the period the counters above belong to (0 for a lifetime budget)."""

    def has_limits(self) -> bool:
        """Whether requests must be counted for the project (else its tokens pay nothing for it)."""
        return any(getattr(self, f) is not None for f in LIMIT_FIELDS[:5]) or self.per_user.is_set()


class Token(msgspec.Struct, kw_only=True, frozen=True):
    """A virtual token: only the SHA-256 of its secret is kept, and a display prefix (`lg-…abcd`)."""

    id: str
    project_id: str
    name: str = ""
    prefix: str
    secret_hash: str
    expires_at: float | None = None
    is_active: bool = True
    max_requests: int | None = None
    request_count: int = 0
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    budget_tokens: int | None = None
    """Most LLM tokens (prompt + completion) it may use over its life."""
    tokens_used: int = 0
    budget_cost: float | None = None
    """Most it may spend over its life, in the currency of the configured `[prices]`."""
    cost_used: float = 0.0
    allowed_models: tuple[str, ...] = ()
    """A subset of the project's; empty means the project's."""
    created_at: float
    updated_at: float
    last_used_at: float | None = None
    revoked_at: float | None = None
    budget_period: str | None = None
    """access/periods.py; None: the budgets and max_requests are for the token's life."""
    alert_threshold: float | None = None
    queue_ms: int = 0
    period_start: float = 0.0
    """The start of the period request_count, tokens_used and cost_used belong to (0: lifetime)."""


class UsageDelta(msgspec.Struct, frozen=True):
    """What one instance counted for a token (or a project) since its last write-back, in the period that
    started at `period_start`: a store that holds an earlier period's counts starts over from it; a delta of
    an earlier period than the store's is dropped."""

    token_id: str
    requests: int
    tokens: int
    last_used_at: float
    cost: float = 0.0
    period_start: float = 0.0


class Store(Protocol):
    """Projects and tokens. Every method is one transaction; nothing is half-written."""

    dialect: str

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet; return their versions."""

    async def create_project(self, project: Project) -> None:
        """Insert; `Conflict` when the name is taken."""

    async def get_project(self, project_id: str) -> Project | None: ...

    async def list_projects(self) -> list[Project]: ...

    async def update_project(self, project_id: str, changes: Mapping[str, Any], now: float) -> Project | None:
        """Change the PROJECT_UPDATABLE fields given; `Conflict` when the new name is taken."""

    async def delete_project(self, project_id: str, now: float) -> list[Token] | None:
        """Delete the project and revoke its tokens; return those tokens (None: no such project)."""

    async def create_token(self, token: Token) -> None: ...

    async def get_token(self, token_id: str) -> Token | None: ...

    async def find_token(self, secret_hash: str) -> Token | None:
        """The token whose secret hashes to `secret_hash`, active or not."""

    async def has_tokens(self) -> bool:
        """Whether any token exists, revoked or not."""

    async def list_tokens(self, project_id: str | None = None, is_active: bool | None = None) -> list[Token]: ...

    async def update_token(self, token_id: str, changes: Mapping[str, Any], now: float) -> Token | None:
        """Change the TOKEN_UPDATABLE fields given (never the counters, which write-backs move)."""

    async def revoke_token(self, token_id: str, now: float) -> Token | None: ...

    async def rotate_token(self, token_id: str, secret_hash: str, prefix: str, now: float) -> Token | None:
        """Give an active token a new secret; the old one stops working."""

    async def add_usage(self, deltas: Sequence[UsageDelta], project_deltas: Sequence[UsageDelta] = ()) -> None:
        """Add counted requests, tokens and cost to tokens (and projects: `token_id` is then the project's id),
        in one transaction."""

    async def insert_usage(self, events: Sequence[UsageEvent]) -> None:
        """Add one `usage` row per event, in one transaction."""

    async def insert_usage_once(self, events: Sequence[UsageEvent]) -> None:
        """Add a `usage` row for each event whose row (the same `request_id` and `time`) is not stored yet, in
        one transaction: the spill file's replay, which may hold a batch whose commit reached the store after
        the connection broke."""

    async def summarize_usage(self, query: UsageQuery) -> list[UsageGroup]:
        """Requests, errors, tokens, cost and latency percentiles of the rows `query` selects, per group."""

    async def append_audit(self, entry: AuditEntry) -> None:
        """Add a row to the audit trail (rows are never changed; the table refuses updates)."""

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """The audit rows `query` selects, newest first, at most `query.limit`."""

    async def prune_audit(self, before: float) -> int:
        """Delete the audit rows older than `before` (the retention); how many went."""


def encode_value(column: str, value: Any) -> Any:
    """A record field as stored: JSON text for the structured columns."""
    return msgspec.json.encode(value).decode() if column in _JSON_COLUMNS else value


def project_row(project: Project) -> list[Any]:
    return [encode_value(c, getattr(project, c)) for c in PROJECT_COLUMNS]


def token_row(token: Token) -> list[Any]:
    return [encode_value(c, getattr(token, c)) for c in TOKEN_COLUMNS]


def _decoded(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (msgspec.json.decode(v) if k in _JSON_COLUMNS else v) for k, v in row.items()}


def project_from_row(row: Mapping[str, Any]) -> Project:
    return msgspec.convert(_decoded(row), Project)


def token_from_row(row: Mapping[str, Any]) -> Token:
    data = _decoded(row)
    data["is_active"] = bool(data["is_active"])
    return msgspec.convert(data, Token)


def check_changes(changes: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
