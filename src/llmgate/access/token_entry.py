"""A virtual token's secret (issue, hash, display) and its entry in the cache: its record, its project's
allowances, what this instance counted since the store, and the checks a request passes (revoked, expired,
model allowed). The cache that holds the entries is access/tokens.py."""

from __future__ import annotations

import hashlib
import secrets

from llmgate.access.budgets import Budgeted
from llmgate.access.limits import Limits
from llmgate.access.projects import ProjectEntry
from llmgate.errors import ModelNotAllowed, TokenExpired, TokenRevoked
from llmgate.store.base import Project, Token
from llmgate.store.crypto import KeyBox

SECRET_PREFIX = "lg-"


def new_secret() -> str:
    """A fresh token secret: `lg-` and 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 (hex): the secret has 256 random bits, so no salt or slow hash is needed to keep it safe."""
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    """`lg-…abcd`: enough to recognise a token in a list, never enough to use it."""
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def is_token_secret(credential: str) -> bool:
    return credential.startswith(SECRET_PREFIX)


class TokenEntry(Budgeted):
    """A cached token: its record, its project's allowances, and what this instance counted since the store."""

    __slots__ = (
        "allowed_models",
        "counts_tokens",
        "expires_at",
        "has_extras",
        "has_tpm",
        "idle_flushes",
        "is_active",
        "loaded_at",
        "project",
        "project_id",
        "token_id",
        "upstream_keys",
    )

    def __init__(self, token: Token, project: Project | None, keybox: KeyBox, now: float,
                 project_entry: ProjectEntry | None = None) -> None:
        super().__init__(token.request_count, token.tokens_used, token.cost_used)
        self.token_id = token.id
        self.project_id = token.project_id
        self.idle_flushes = 0
        self.update(token, project, keybox, now, project_entry)

    @classmethod
    def for_project(cls, project: Project, models: frozenset[str] | None, keybox: KeyBox, now: float,
                    project_entry: ProjectEntry | None = None) -> TokenEntry:
        """A caller that holds no virtual token but belongs to `project` (a JWT's): the project's models (narrowed
        to `models` when given), upstream keys and limits (`project_entry`, shared with its tokens), no token
        limits of its own; `token_id` is empty, so no token row or Redis token key is ever written for it."""
        entry = cls.__new__(cls)
        Budgeted.__init__(entry, 0, 0, 0.0)
        entry.token_id = ""
        entry.idle_flushes = 0
        entry.is_active, entry.expires_at = True, None
        entry.has_tpm = False
        entry.update_project(project, models, keybox, now, project_entry)
        return entry

    def update_project(self, project: Project, models: frozenset[str] | None, keybox: KeyBox, now: float,
                       project_entry: ProjectEntry | None = None) -> None:
        """A project caller's entry from a fresh project record (and the project's shared entry when it has
        limits: admission then takes the long way, as for the project's tokens; else it pays nothing for it)."""
        self.project = project_entry
        self.counts_tokens = self.has_extras = project_entry is not None
        self.project_id = project.id
        own = frozenset(project.allowed_models)
        self.allowed_models = (own & models if own else models) if models is not None else (own or None)
        self.upstream_keys = {name: key for name, enc in project.upstream_keys.items() if (key := keybox.decrypt(enc))}
        self.loaded_at = now

    def update(self, token: Token, project: Project | None, keybox: KeyBox, now: float,
               project_entry: ProjectEntry | None = None) -> None:
        """Take a fresh record from the store, keeping what was counted here and not written back yet."""
        self.is_active = token.is_active and project is not None
        self.expires_at = token.expires_at
        self.limits = Limits(token.max_requests, token.rpm_limit, token.tpm_limit, token.budget_tokens,
                             token.budget_cost, period=token.budget_period)
        self.anchor = token.created_at
        self.queue_ms = token.queue_ms
        self.alert_threshold = token.alert_threshold
        self.project = project_entry
        self.has_tpm = token.tpm_limit is not None
        self.counts_tokens = self.has_tpm or token.budget_tokens is not None or token.budget_cost is not None or \
            project_entry is not None
        """Something depends on the LLM tokens this token's answers use (see ServerConfig.meter_every_token)."""
        self.has_extras = project_entry is not None or token.budget_period is not None or token.queue_ms > 0 or \
            token.alert_threshold is not None
        """Admission takes the long way (access/admission.py): a project's limits, a period, a queue, alerts."""
        project_models = frozenset(project.allowed_models) if project else frozenset()
        own = frozenset(token.allowed_models)
        self.allowed_models = (own & project_models if own and project_models else own or project_models) or None
        keys = project.upstream_keys if project else {}
        self.upstream_keys = {name: key for name, enc in keys.items() if (key := keybox.decrypt(enc))}
        self.take_stored((token.request_count, token.tokens_used, token.cost_used), token.period_start, now)
        self.loaded_at = now

    def check(self, now: float) -> None:
        """Refuse a revoked or expired token (401, saying which)."""
        if not self.is_active:
            raise TokenRevoked("This API token has been revoked.")
        if self.expires_at is not None and now >= self.expires_at:
            raise TokenExpired("This API token has expired.")

    def check_model(self, model: str | None) -> None:
        if self.allowed_models is not None and model not in self.allowed_models:
            raise ModelNotAllowed(f"This token is not allowed to use the model `{model}`.", param="model")
