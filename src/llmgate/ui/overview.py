"""/ui/: requests, errors, LLM tokens and cost over the last hour, day or week from the usage store, as charts;
latency and overhead percentiles; the top models and projects."""

from __future__ import annotations

import math
import time
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get

from llmgate.admin.usage import recording_note
from llmgate.services import Services
from llmgate.store.base import Store
from llmgate.store.usage import UsageGroup, UsageQuery, group_label
from llmgate.ui.charts import bar_chart
from llmgate.ui.render import page


class Window(msgspec.Struct, frozen=True):
    """A period the overview shows, in buckets of `step_s` (aligned to UTC, as the store groups hours and days)."""

    label: str
    span_s: int
    step_s: int
    tick: str
    """strftime format of a bucket's label."""


WINDOWS = {"hour": Window("Last hour", 3600, 300, "%H:%M"), "day": Window("Last day", 86400, 3600, "%H:00"),
           "week": Window("Last week", 7 * 86400, 86400, "%a %d")}
_GROUPED = {3600: "hour", 86400: "day"}
TOP = 5


def bucket_starts(window: Window, now: float) -> list[int]:
    """The start of each bucket, oldest first; the last one holds `now`."""
    last = math.floor(now / window.step_s) * window.step_s
    count = window.span_s // window.step_s
    return [last - (count - 1 - i) * window.step_s for i in range(count)]


async def series(store: Store, window: Window, now: float) -> list[UsageGroup | None]:
    """Each bucket's summary (None when it had no request): one grouped query when the store groups by the
    bucket's size, else one query a bucket."""
    starts = bucket_starts(window, now)
    group_by = _GROUPED.get(window.step_s)
    if group_by is not None:
        query = UsageQuery(from_time=starts[0], group_by=group_by)  # type: ignore[arg-type]
        found = {g.group: g for g in await store.summarize_usage(query)}
        return [found.get(group_label(query, start)) for start in starts]
    out: list[UsageGroup | None] = []
    for start in starts:
        groups = await store.summarize_usage(UsageQuery(from_time=start, to_time=start + window.step_s))
        out.append(groups[0] if groups else None)
    return out


async def top(store: Store, by: str, from_time: float) -> list[UsageGroup]:
    groups = await store.summarize_usage(UsageQuery(from_time=from_time, group_by=by))  # type: ignore[arg-type]
    return sorted(groups, key=lambda g: g.requests, reverse=True)[:TOP]


class OverviewPage(Controller):
    path = "/"

    @get("/")
    async def overview(self, request: Request[Any, Any, Any], gateway: Services,
                       window: str = "day") -> Response[Any]:
        chosen = WINDOWS.get(window, WINDOWS["day"])
        now = time.time()
        starts = bucket_starts(chosen, now)
        buckets = await series(gateway.store, chosen, now)
        labels = [time.strftime(chosen.tick, time.gmtime(s)) for s in starts]
        totals = await gateway.store.summarize_usage(UsageQuery(from_time=starts[0]))
        projects = {p.id: p.name for p in await gateway.store.list_projects()}

        def values(field: str) -> list[float]:
            return [float(getattr(b, field) or 0) if b is not None else 0.0 for b in buckets]

        period = chosen.label.lower()
        charts = [(f"Requests, {period} (errors darker)", bar_chart(f"Requests, {period}", labels, values("requests"),
                                                                     values("errors"), "errors")),
                  (f"LLM tokens, {period}", bar_chart(f"LLM tokens, {period}", labels, values("total_tokens"))),
                  (f"Cost, {period}", bar_chart(f"Cost, {period}", labels, values("cost")))]
        server = gateway.settings.server
        return page(request, "overview.html", windows=WINDOWS, window=window if window in WINDOWS else "day",
                    chosen=chosen, charts=charts, total=totals[0] if totals else None,
                    top_models=await top(gateway.store, "model", starts[0]),
                    top_projects=await top(gateway.store, "project", starts[0]), project_names=projects,
                    note=recording_note(server.usage_log, server.usage_store))
