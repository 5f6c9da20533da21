"""Virtual tokens: the in-process cache the hot path checks them against (their entries and secrets:
access/token_entry.py).

A cache entry lives `ttl_s`; past half of it, the next write-back cycle reloads it from the store in the
background, so a steady stream of requests never waits on the store. Unknown secrets get a negative entry
(`negative_ttl_s`), so guessing does not reach the store either. Counted requests and tokens are written
back in batches by `flush()`, called every `LLMGATE_USAGE_FLUSH_S` (and at shutdown).

While the store is down (a load fails), a cached token keeps working from its entry for up to `STALE_S` past
its TTL (a revoked one, marked stale by `forget`, does not); a token not cached gets 503 `store_unavailable`.
For `STORE_RETRY_S` after a failure the store is not asked again, so requests do not queue behind it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec
from loguru import logger

from llmgate.access.budgets import Budgeted
from llmgate.access.limits import Counters, Limits, admit, record_tokens, refusal_error
from llmgate.access.projects import ProjectEntry
from llmgate.access.token_entry import TokenEntry
from llmgate.errors import StoreUnavailable, Unauthorized
from llmgate.store.base import Project, Store, UserLimits
from llmgate.store.crypto import KeyBox

if TYPE_CHECKING:
    from llmgate.store.redis import SharedLimits

AlertHook = Callable[[str, str, str, float, float, Budgeted], None]
"""(kind: token | project, its id, the budget's field, used, limit, the token's or project's entry)"""
_NEGATIVE_MAX = 10_000  # bounded: a flood of random keys must not grow memory without end
IDLE_FLUSHES = 300  # an entry unused for this many write-back cycles (5 min at 1 s) leaves the cache
STALE_S = 300.0
"""How long past its TTL a cached token is still served while the store cannot be reached."""
STORE_RETRY_S = 1.0
"""After the store failed a load, how long loads are answered from the cache alone."""
LOAD_TIMEOUT_S = 2.0
"""The longest a request waits for the store to load its token (a hung store counts as down)."""
WRONG_KEY = "Incorrect API key provided."


class TokenCache:
    """secret hash → TokenEntry, with negative entries, single-flight loads and batched write-back."""

    def __init__(self, store: Store, keybox: KeyBox, ttl_s: float, negative_ttl_s: float,
                 clock: Callable[[], float], shared: SharedLimits | None = None) -> None:
        self.store = store
        self.keybox = keybox
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.clock = clock
        self.shared = shared
        self.entries: dict[str, TokenEntry] = {}
        self._hash_of: dict[str, str] = {}  # token id → secret hash
        self._negative: dict[str, float] = {}  # secret hash → until
        self._loading: dict[str, asyncio.Future[TokenEntry | None]] = {}
        self._used: set[TokenEntry] = set()  # entries with unflushed counts
        self.projects: dict[str, ProjectEntry] = {}
        """Projects with limits, by id: one entry however many of their tokens are cached."""
        self._used_projects: set[ProjectEntry] = set()
        self.per_user_defaults: dict[str, UserLimits] = {}
        """`[projects.<id>.per_user]` from the config, by project id or name."""
        self.queued = 0
        """Requests waiting in a limit's queue now (access/admission.py)."""
        self.on_alert: AlertHook | None = None
        """Called when a budget passes its soft limit (access/alerts.py), once per period per instance."""
        self._warned_at = -math.inf
        self._store_down_until = -math.inf
        self._store_warned_at = -math.inf

    def lookup(self, secret_hash: str, now: float) -> TokenEntry | None:
        """The fresh cached entry, or None when the store must be asked; Unauthorized for a known-bad secret."""
        entry = self.entries.get(secret_hash)
        if entry is not None:
            if now - entry.loaded_at < self.ttl_s:
                return entry
            return None
        until = self._negative.get(secret_hash)
        if until is not None:
            if now < until:
                raise Unauthorized(WRONG_KEY)
            del self._negative[secret_hash]
        return None

    async def load(self, secret_hash: str) -> TokenEntry:
        """Ask the store (one query however many requests wait for the same secret); while it is down, the
        cache alone answers (see the module docstring)."""
        if self.clock() < self._store_down_until:
            return self._from_cache(secret_hash)
        pending = self._loading.get(secret_hash)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.wait_for(self._load(secret_hash), LOAD_TIMEOUT_S))
            self._loading[secret_hash] = pending
            pending.add_done_callback(lambda _: self._loading.pop(secret_hash, None))
        try:
            entry = await asyncio.shield(pending)
        except Exception as exc:  # the store's own error (asyncpg, sqlite3): down, or failing
            now = self.clock()
            self._store_down_until = now + STORE_RETRY_S
            if now - self._store_warned_at >= 10:
                self._store_warned_at = now
                logger.warning("the token store failed ({}); cached tokens are served for up to {} s past their "
                               "TTL, others get 503 until it answers", exc, STALE_S)
            return self._from_cache(secret_hash)
        if entry is None:
            raise Unauthorized(WRONG_KEY)
        return entry

    def _from_cache(self, secret_hash: str) -> TokenEntry:
        entry = self.entries.get(secret_hash)
        if entry is not None and self.clock() - entry.loaded_at < self.ttl_s + STALE_S:
            return entry
        raise StoreUnavailable("The gateway cannot check this API key right now: its token store is unavailable. "
                               "Try again shortly.", headers={"retry-after": str(math.ceil(STORE_RETRY_S))})

    async def _load(self, secret_hash: str) -> TokenEntry | None:
        token = await self.store.find_token(secret_hash)
        project = await self.store.get_project(token.project_id) if token else None
        now = self.clock()
        if token is None:
            if len(self._negative) >= _NEGATIVE_MAX:
                self._negative.clear()
            self._negative[secret_hash] = now + self.negative_ttl_s
            return None
        project_entry = self.project_entry(project, now) if project is not None else None
        entry = self.entries.get(secret_hash)
        if entry is not None and entry.token_id == token.id:
            entry.update(token, project, self.keybox, now, project_entry)
            return entry
        entry = TokenEntry(token, project, self.keybox, now, project_entry)
        self.entries[secret_hash] = entry
        self._hash_of[token.id] = secret_hash
        return entry

    def project_entry(self, project: Project, now: float) -> ProjectEntry | None:
        """The project's shared entry when it has limits (updated from this record), else None: its callers then
        pay nothing for it. `[projects.<id>.per_user]` in the config gives per-user limits the API has not set."""
        defaults = self.per_user_defaults.get(project.id) or self.per_user_defaults.get(project.name)
        if defaults is not None and not project.per_user.is_set():
            project = msgspec.structs.replace(project, per_user=defaults)
        entry = self.projects.get(project.id)
        if not project.has_limits() and project.queue_ms == 0:
            if entry is not None and entry not in self._used_projects:
                del self.projects[project.id]
            return None
        if entry is None:
            entry = self.projects[project.id] = ProjectEntry(project, now)
        else:
            entry.update(project, now)
        return entry

    def admit(self, entry: TokenEntry, now: float) -> None:
        """Count a request against the token's limits on this instance, or raise 429 saying which."""
        refusal = admit(entry.limits, entry.counters, now)
        if refusal is not None:
            raise refusal_error(refusal)
        entry.unflushed_requests += 1
        self._used.add(entry)

    def check_request(self, entry: TokenEntry, model: str | None, now: float) -> bool:
        """A request's checks: the model, then, without Redis, the limits (counting it). True when the caller must
        await `admit_shared` (Redis) or `admission.admit_request` (`entry.has_extras`: a project's limits, a
        period, a queue, alerts); synchronous otherwise: no coroutine on the hot path."""
        entry.check_model(model)
        if (self.shared is not None and entry.token_id) or entry.has_extras:
            return True
        self.admit(entry, now)
        return False

    def counted(self, entry: TokenEntry) -> None:
        """A request was admitted and counted in `entry.counters`: write it back with the next batch."""
        entry.unflushed_requests += 1
        self._used.add(entry)

    def counted_project(self, project: ProjectEntry) -> None:
        """The same for a project (with Redis, its counters hold Redis's count already)."""
        project.unflushed_requests += 1
        self._used_projects.add(project)

    def check_alerts(self, entry: TokenEntry) -> None:
        """Budgets (the token's, its project's) past their alert threshold for the first time this period."""
        if self.on_alert is None:
            return
        for subject, kind, subject_id in ((entry, "token", entry.token_id),
                                          (entry.project, "project", entry.project_id)):
            if subject is not None and subject.alert_threshold is not None:
                for budget, used, limit in subject.crossed():
                    self.on_alert(kind, subject_id, budget, used, limit, subject)

    async def admit_shared(self, entry: TokenEntry, now: float) -> None:
        """The same, with rpm/tpm/max_requests counted in Redis across instances (the budget stays local).

        When Redis cannot be reached, the request is counted on this instance instead (logged every 10 s).
        """
        assert self.shared is not None
        limits, counters = entry.limits, entry.counters
        if (limits.budget_tokens is not None and counters.tokens_used >= limits.budget_tokens) or \
                (limits.budget_cost is not None and counters.cost_used >= limits.budget_cost):
            refusal = admit(Limits(budget_tokens=limits.budget_tokens, budget_cost=limits.budget_cost), counters, now)
            assert refusal is not None
            raise refusal_error(refusal)
        try:
            refusal = await self.shared.admit(entry.token_id, entry.limits, entry.counters.request_count)
        except Exception as exc:  # Redis unreachable: keep serving, with this instance's own counts
            self.warn_shared(exc, now)
            self.admit(entry, now)
            return
        if refusal is not None:
            raise refusal_error(refusal)
        entry.counters.request_count += 1
        entry.unflushed_requests += 1
        self._used.add(entry)

    def record_usage(self, entry: TokenEntry, tokens: int, now: float, cost: float = 0.0,
                     user: str | None = None) -> bool:
        """Add a response's LLM tokens (and cost) to the budgets and the tpm window (written back with the next
        batch): the token's, and its project's and end user's when the project has limits. True when they must
        also go to Redis (`record_shared_usage`).
        """
        if cost > 0:
            entry.counters.cost_used += cost
            entry.unflushed_cost += cost
            self._used.add(entry)
        project = entry.project
        if project is not None:
            self.record_project_usage(project, tokens, now, cost, user)
        if tokens <= 0 and project is None:
            return False
        if tokens > 0:
            record_tokens(entry.counters, tokens, now, entry.has_tpm and self.shared is None)
            entry.unflushed_tokens += tokens
            self._used.add(entry)
        if entry.alert_threshold is not None or (project is not None and project.alert_threshold is not None):
            self.check_alerts(entry)
        return self.shared is not None and (entry.has_tpm or project is not None)

    def record_project_usage(self, project: ProjectEntry, tokens: int, now: float, cost: float,
                             user: str | None = None) -> None:
        """An answer's tokens and cost, to a project's counts (and its end user's), whoever called for it."""
        local = self.shared is None
        if local:  # with Redis, its counts come back with the next admission (adding here would count twice)
            project.counters.cost_used += cost
            record_tokens(project.counters, tokens, now, project.has_tpm)
        project.unflushed_cost += cost
        project.unflushed_tokens += max(tokens, 0)
        self._used_projects.add(project)
        if user is not None and project.user_limits is not None and local:
            counters = project.user_counters(user)
            counters.cost_used += cost
            record_tokens(counters, tokens, now, project.user_limits.tpm is not None)

    async def record_shared_usage(self, entry: TokenEntry, tokens: int, cost: float = 0.0,
                                  user: str | None = None) -> None:
        """An answer's tokens (and cost) to Redis: the token's tpm log, its project's and end user's counts."""
        assert self.shared is not None
        try:
            if entry.has_tpm and tokens > 0:
                await self.shared.record_tokens(entry.token_id, tokens)
            project = entry.project
            if project is not None:
                subject = f"project:{project.project_id}"
                await self.shared.record_budget(subject, project.counters, tokens, cost, project.has_tpm)
                if user is not None and project.user_limits is not None:
                    await self.shared.record_budget(f"{subject}:user:{user}", project.user_counters(user), tokens,
                                                    cost, project.user_limits.tpm is not None)
        except Exception as exc:
            self.warn_shared(exc, self.clock())

    def warn_shared(self, exc: Exception, now: float) -> None:
        if now - self._warned_at >= 10:  # once per 10 s, not once per request
            self._warned_at = now
            logger.warning("Redis is unreachable ({}); limits are counted per instance until it is back", exc)

    def forget(self, secret_hash: str) -> None:
        """A secret's token changed (revoked, rotated, new limits): the next request asks the store again.

        The entry is marked stale rather than dropped, so the counts not yet written back are kept.
        """
        self._negative.pop(secret_hash, None)
        entry = self.entries.get(secret_hash)
        if entry is not None:
            entry.loaded_at = -math.inf

    def _drop(self, secret_hash: str) -> None:
        entry = self.entries.pop(secret_hash, None)
        if entry is not None and self._hash_of.get(entry.token_id) == secret_hash:
            del self._hash_of[entry.token_id]

    def forget_all(self) -> None:
        """Invalidations may have been missed (the Redis channel reconnected): reload every entry."""
        self._negative.clear()
        for entry in self.entries.values():
            entry.loaded_at = -math.inf

    def forget_token(self, token_id: str) -> None:
        secret_hash = self._hash_of.get(token_id)
        if secret_hash is not None:
            self.forget(secret_hash)

    def live_counters(self, token_id: str) -> Counters | None:
        """This instance's counters of a cached token (fresher than the store's by the unwritten counts)."""
        entry = self.entries.get(self._hash_of.get(token_id, ""))
        return entry.counters if entry is not None else None

    def forget_unknown(self, secret_hash: str) -> None:
        """A token was just created: drop any negative entry for its secret."""
        self._negative.pop(secret_hash, None)

    async def flush(self) -> None:
        """Write counted usage back in one transaction, then reload entries past half their TTL."""
        now = self.clock()
        used, self._used = self._used, set()
        for entry in [e for e in used if not e.token_id]:  # a project caller's (a JWT's): no token row to add to
            entry.unflushed_requests = entry.unflushed_tokens = 0
            entry.unflushed_cost = 0.0
            used.discard(entry)
        projects, self._used_projects = self._used_projects, set()
        deltas = [e.take_delta(e.token_id, now) for e in used]
        project_deltas = [p.take_delta(p.project_id, now) for p in projects]
        try:
            await self.store.add_usage(deltas, project_deltas)
        except Exception:
            logger.exception("writing token usage back failed; will retry")
            counted: list[Budgeted] = [*used, *projects]
            for owner, delta in zip(counted, [*deltas, *project_deltas], strict=True):
                if owner.counters.period_start == delta.period_start:  # else that period is over: dropped
                    owner.unflushed_requests += delta.requests
                    owner.unflushed_tokens += delta.tokens
                    owner.unflushed_cost += delta.cost
            self._used |= used
            self._used_projects |= projects
            return
        stale = []
        for secret_hash, entry in list(self.entries.items()):
            entry.idle_flushes = 0 if entry in used else entry.idle_flushes + 1
            if entry.idle_flushes > IDLE_FLUSHES:
                self._drop(secret_hash)
            elif now - entry.loaded_at >= self.ttl_s / 2:
                stale.append(secret_hash)
        for secret_hash in stale:
            try:
                reloaded = await self._load(secret_hash)
            except Exception:
                logger.exception("reloading a token failed")
                return
            if reloaded is None and not any(e is self.entries.get(secret_hash) for e in self._used):
                self._drop(secret_hash)
