"""The composition root: every service a running gateway holds, built from Settings and opened and closed by
the app's lifespan; the request path is handed the narrow few it uses (`v1_services`).

    Services
     ├── store, keybox, shared (Redis), audit    persistence
     ├── authenticator, tokens, jwt, token_lifecycle, pricing    access/
     ├── upstreams                          the current configuration generation (llmgate/upstreams.py)
     ├── reloader                           swaps it (llmgate/reload.py)
     └── bus (usage sinks), metrics, sampler, lag
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from loguru import logger

from llmgate.access.authenticate import Authenticator
from llmgate.access.lifecycle import TokenLifecycle
from llmgate.access.projects import per_user_defaults
from llmgate.access.throttle import AuthThrottle
from llmgate.access.tokens import TokenCache
from llmgate.audit import AuditLog
from llmgate.config import ProviderConfig, Settings
from llmgate.observe.alerts import Alerts
from llmgate.observe.lag import LoopLag
from llmgate.observe.metrics import GatewayMetrics
from llmgate.observe.state_metrics import StateSampler
from llmgate.pipeline.request import V1Services
from llmgate.proxy.client import UpstreamClient
from llmgate.proxy.sigv4 import signing_clients
from llmgate.reload import Reloader
from llmgate.store.backend import open_store
from llmgate.store.base import Store
from llmgate.store.crypto import KeyBox
from llmgate.upstreams import Upstreams, close_all
from llmgate.usage.account import EventBuilder
from llmgate.usage.bus import EventBus, Observe, Sink
from llmgate.usage.event import Exchange, UsageEvent
from llmgate.usage.prices import Pricing

if TYPE_CHECKING:
    from llmgate.access.jwt import JwtAuth
    from llmgate.cache.flight import ResponseCache
    from llmgate.observe.otlp import SpanExport
    from llmgate.store.redis import SharedLimits
    from llmgate.usage.raw import RawLogSink

ClientFactory = Callable[[ProviderConfig], UpstreamClient]


class Services:
    """Everything a running gateway holds; no request logic."""

    def __init__(self, settings: Settings, *, clients: ClientFactory = UpstreamClient,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`clients` and `clock` are for tests (an upstream faked in process, routing's time, and the JWKS refresh
        interval's, set by hand)."""
        self.settings = settings
        server = settings.server
        self.store: Store = open_store(settings.database_url, server.data_dir)
        self.keybox = KeyBox(settings.secret_key)
        self.shared: SharedLimits | None = None
        if settings.redis_url:
            from llmgate.store.redis import SharedLimits

            self.shared = SharedLimits(settings.redis_url)
        self.tokens = TokenCache(self.store, self.keybox, server.token_cache_ttl_s, server.token_negative_ttl_s,
                                 time.time, self.shared)
        self.jwt: JwtAuth | None = None
        """Bearer JWTs of the `[[auth.jwt]]` issuers (PyJWT loaded only when one is configured)."""
        if settings.auth.jwt:
            from llmgate.access.jwt import JwtAuth

            self.jwt = JwtAuth(settings.auth.jwt, self.tokens, server.token_cache_ttl_s, clock)
        self.authenticator = Authenticator(settings.master_key, self.tokens,
                                           has_management_token=settings.management_token is not None, jwt=self.jwt)
        self.auth_throttle = AuthThrottle(server.auth_fail_burst, server.auth_fail_per_s)
        """Failed authentications per client address, /v1 and /manage alike."""
        self.audit = AuditLog(self.store, server.audit_retention_days)
        """The audit trail of management actions, handed to what performs them."""
        self.token_lifecycle = TokenLifecycle(self.store, self.tokens, self.authenticator, self.shared, self.audit)
        self.new_client = signing_clients(clients)
        """Makes a provider's upstream client (here and on reload); a Bedrock provider's signs its requests."""
        self.upstreams = Upstreams(settings, {p.name: self.new_client(p) for p in settings.providers}, clock=clock)
        """The current configuration generation (a reload swaps it)."""
        self.reloader = Reloader(self)
        self.lag = LoopLag()
        self.metrics = GatewayMetrics()
        spill = server.spill_file
        self.raw_log = self._raw_log()
        self.accounting = EventBuilder(lambda: self.settings.prices, self.raw_log, server.end_user_header)
        self.pricing = Pricing(lambda: self.settings.prices)
        """A virtual token's cost, for its cost budget, priced as the request ends."""
        self.spans: SpanExport | None = None
        """The traced requests' spans, exported over OTLP (only when tracing is on: the SDK is imported then)."""
        if settings.tracing is not None:
            from llmgate.observe.otlp import SpanExport

            self.spans = SpanExport(settings.tracing)
        # /metrics counts every request from its exchange; usage events are built only for the usage sinks.
        self.bus = EventBus(self._sinks(spill), self.accounting, observe=self._observe(),
                            prepare=self.accounting.prepare,
                            max_queue=server.usage_queue_size, batch_size=server.usage_batch_size,
                            flush_s=server.usage_flush_s, spill_path=spill)
        self.cache: ResponseCache | None = None
        """The response cache, when the settings turn it on (its storage and scope are set at start)."""
        if settings.caches:
            from llmgate.cache.flight import open_cache

            self.cache = open_cache(settings)
        cache = self.cache
        self.sampler = StateSampler(self.metrics, lambda: self.upstreams.table, self.bus, self.lag,
                                    (lambda: cache.held_bytes) if cache is not None else None,
                                    lambda: self.tokens.queued)
        self.alerts = Alerts(server.alert_webhook_url, self.metrics.budget_alerts)
        self.tokens.on_alert = self.alerts
        self.tokens.per_user_defaults = per_user_defaults(settings.projects)
        self.started_at = time.monotonic()
        self._flusher: asyncio.Task[None] | None = None

    def _observe(self) -> Observe:
        """What sees every finished request: the metrics, and the span export when tracing is on."""
        record, spans = self.metrics.record, self.spans
        if spans is None:
            return record

        def observe(exchanges: Sequence[Exchange], events: Sequence[UsageEvent | None] | None) -> None:
            record(exchanges, events)
            spans.observe(exchanges, events)

        return observe

    def _sinks(self, spill_path: str) -> list[Sink]:
        """Where usage events go, from the settings (usage/sinks/)."""
        server = self.settings.server
        sinks: list[Sink] = []
        if server.usage_log and server.usage_store:
            from llmgate.usage.sinks.store import StoreSink

            sinks.append(StoreSink(self.store, server.store_spill_file))
        if server.usage_jsonl_path:
            from llmgate.usage.sinks.jsonl import JsonlSink

            sinks.append(JsonlSink(server.usage_jsonl_path, server.usage_jsonl_max_bytes, server.usage_jsonl_backups,
                                   server.usage_jsonl_fsync))
        if server.usage_http_url:
            from llmgate.usage.sinks.http import HttpSink

            sinks.append(HttpSink(server.usage_http_url, spill_path, token=self.settings.usage_http_token,
                                  retries=server.usage_http_retries, timeout_s=server.usage_http_timeout_s))
        if self.raw_log is not None:
            sinks.append(self.raw_log)
        return sinks

    def _raw_log(self) -> RawLogSink | None:
        """The raw body log when LLMGATE_RAW_LOG is on; it masks every key llmgate knows."""
        server, settings = self.settings.server, self.settings
        if not server.raw_log:
            return None
        from llmgate.usage.raw import RawLogSink

        known = [settings.master_key or "", settings.management_token or "", settings.usage_http_token or "",
                 *(key for p in settings.providers for key in p.api_keys)]
        return RawLogSink(server.raw_log_file, server.raw_log_max_bytes, server.raw_log_backups, known)

    def v1_services(self) -> V1Services:
        """What the /v1 pipeline's steps are given."""
        return V1Services(server=self.settings.server, authenticator=self.authenticator, tokens=self.tokens,
                          pricing=self.pricing, upstreams=lambda: self.upstreams, emit=self.bus.emit, lag=self.lag,
                          auth_throttle=self.auth_throttle, cache=self.cache, tracing=self.settings.tracing)

    async def open(self) -> None:
        """Open the store (migrating it), one pooled client per provider, and start the usage write-back, the
        event bus and the loop-lag monitor."""
        await self.store.open()
        self.authenticator.has_tokens = await self.store.has_tokens()
        mode = self.authenticator.access_mode()
        if self.authenticator.is_open:
            logger.warning("!!! /v1 access: {} -- every local process can use this gateway. Set "
                           "LLMGATE_MASTER_KEY or create a token to close it. !!!", mode)
        else:
            logger.info("/v1 access: {}", mode)
        for client in self.upstreams.clients.values():
            await client.open()
        if self.jwt is not None:
            await self.jwt.open()
        if self.shared is not None:
            self.shared.listen(self.tokens.forget, self.tokens.forget_all)
        await self.audit.prune()
        self._flusher = asyncio.create_task(self._flush_forever())
        self.bus.start()
        self.alerts.start()
        self.lag.start()
        self.sampler.start()

    async def close(self) -> None:
        await self.sampler.stop()
        await self.lag.stop()
        await self.bus.close()  # every queued event reaches its sinks (the store is still open)
        if self.spans is not None:
            await self.spans.close()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.tokens.flush()
        await self.alerts.close()
        await close_all(list(self.upstreams.clients.values()))
        if self.cache is not None:
            await self.cache.close()
        if self.jwt is not None:
            await self.jwt.close()
        if self.shared is not None:
            await self.shared.close()
        await self.store.close()

    async def check_access(self) -> None:
        """Ask the store whether it holds a virtual token: at start, then while /v1 is open, so that a token
        issued elsewhere (another instance on the same store) closes it within a write-back interval."""
        has_tokens = await self.store.has_tokens()
        if has_tokens and self.authenticator.is_open:
            logger.info("/v1 access: a virtual token exists; closed from now on")
        self.authenticator.has_tokens = has_tokens

    async def _flush_forever(self) -> None:
        interval = self.settings.server.usage_flush_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tokens.flush()
                if self.authenticator.is_open:
                    await self.check_access()
            except Exception:
                logger.exception("token usage write-back failed")
            if self.jwt is not None:
                try:
                    await self.jwt.reload_stale(time.time())
                except Exception:
                    logger.exception("reloading the JWT callers' projects failed")
            try:
                await self.audit.prune_now_and_then()
            except Exception:
                logger.exception("pruning the audit trail failed")
