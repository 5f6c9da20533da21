"""A project's limits on this instance: one entry per project with limits, shared by all its cached tokens
(and any caller that pays to the project), and its end users' counters when it limits each of them."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec

from llmgate.access.budgets import Budgeted
from llmgate.access.limits import Counters, Limits
from llmgate.store.base import Project, UserLimits

if TYPE_CHECKING:
    from llmgate.config_access import ProjectConfig

MAX_USERS = 10_000
"""End users whose counters a project keeps on this instance; the least recently seen go first (bounded:
clients name their end users)."""


class ProjectEntry(Budgeted):
    """A project with limits: its counts across all its tokens, on this instance (Redis's when shared)."""

    __slots__ = ("has_tpm", "name", "project_id", "user_limits", "users")

    def __init__(self, project: Project, now: float) -> None:
        super().__init__(0, 0, 0.0)
        self.project_id = project.id
        self.users: OrderedDict[str, Counters] = OrderedDict()
        self.update(project, now)

    def update(self, project: Project, now: float) -> None:
        """Take a fresh record from the store (limits, and the period's counts from every instance)."""
        self.name = project.name
        owner = f"Project {project.name!r}"
        period = project.budget_period
        self.limits = Limits(project.max_requests, project.rpm_limit, project.tpm_limit, project.budget_tokens,
                             project.budget_cost, owner=owner, scope="project", period=period)
        self.has_tpm = project.tpm_limit is not None
        self.anchor = project.created_at
        self.queue_ms = project.queue_ms
        self.alert_threshold = project.alert_threshold
        per_user = project.per_user
        self.user_limits = None if not per_user.is_set() else user_limits(per_user, period)
        self.take_stored((project.request_count, project.tokens_used, project.cost_used), project.period_start,
                         now)

    def user_counters(self, user: str) -> Counters:
        """The end user's counters (new ones in the project's current period)."""
        counters = self.users.get(user)
        if counters is None:
            if len(self.users) >= MAX_USERS:
                self.users.popitem(last=False)
            counters = self.users[user] = Counters()
            counters.period_start, counters.period_end = self.counters.period_start, self.counters.period_end
        else:
            self.users.move_to_end(user)
            if counters.period_start != self.counters.period_start:
                counters.request_count = counters.tokens_used = 0
                counters.cost_used = 0.0
                counters.period_start, counters.period_end = self.counters.period_start, self.counters.period_end
        return counters


def user_limits(per_user: UserLimits, period: str | None) -> Limits:
    """Each end user's limits, named for refusals."""
    return Limits(per_user.max_requests, per_user.rpm_limit, per_user.tpm_limit, per_user.budget_tokens,
                  per_user.budget_cost, owner="This end user", scope="user", period=period)


def per_user_defaults(projects: Mapping[str, ProjectConfig]) -> dict[str, UserLimits]:
    """`[projects.<id>.per_user]` from the config, for the projects that set any (by id or name)."""
    found = {}
    for key, project in projects.items():
        limits = msgspec.convert(msgspec.to_builtins(project.per_user), UserLimits)
        if limits.is_set():
            found[key] = limits
    return found
