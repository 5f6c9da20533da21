"""/manage/usage: what the store's `usage` table holds, filtered and grouped (see store/usage.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, get_args

import msgspec
from litestar import Controller, get
from litestar.params import Parameter, QueryParameter

from llmgate.admin.access import error_responses
from llmgate.errors import InvalidRequest
from llmgate.services import Services
from llmgate.store.usage import GroupBy, UsageGroup, UsageQuery

GROUP_BY: tuple[str, ...] = get_args(GroupBy)


class UsageSummary(msgspec.Struct, kw_only=True, frozen=True):
    """The usage table's groups, and whether this gateway is adding to it (an empty list means no traffic only
    when it is)."""

    recording: bool
    """Whether this gateway writes a usage row for each /v1 request (the usage log on, with the store sink)."""
    note: str | None = None
    """Why nothing new is recorded, when `recording` is false."""
    data: list[UsageGroup]


def recording_note(usage_log: bool, usage_store: bool) -> str | None:
    """What an operator reading usage must know when this gateway records none, else None."""
    if not usage_log:
        return ("The usage log is off on this gateway (LLMGATE_USAGE_LOG=0): requests are not recorded, so "
                "these figures stop at when it was turned off.")
    if not usage_store:
        return ("The usage log does not write to the store on this gateway (LLMGATE_USAGE_STORE=0): requests are "
                "recorded only to the other sinks.")
    return None


class UsageController(Controller):
    path = "/usage"
    tags = ["usage"]  # noqa: RUF012 - Litestar reads it as a plain class attribute

    @get("/", responses=error_responses(400))
    async def usage_summary(
        self, gateway: Services,
        project: Annotated[str | None, Parameter(description="only this project id's requests")] = None,
        token: Annotated[str | None, Parameter(description="only this token id's requests")] = None,
        model: Annotated[str | None, Parameter(description="only requests for this model (alias)")] = None,
        user: Annotated[str | None, Parameter(description="only this end user's requests")] = None,
        from_: Annotated[str | None, QueryParameter(name="from", description=(
            "from this time on (inclusive): Unix seconds, or ISO 8601 (`2026-11-23`, `2026-11-23T20:00Z`; UTC "
            "when no offset is given)"))] = None,
        to: Annotated[str | None, Parameter(description="until this time (exclusive), as `from`")] = None,
        group_by: Annotated[str | None, Parameter(description="day, hour, model, project, token or user; empty "
                                                              "or left out: one group, `all`",
                                                  schema_extra={"enum": [*GROUP_BY, ""]})] = None,
    ) -> UsageSummary:
        """Requests, errors, tokens, cost and p50/p95 latency and overhead per group (one group, `all`, when
        not grouped) in `data`; groups with no request are not listed. `recording` says whether this gateway
        adds to them (with `note` saying why not)."""
        return await summarize_usage(gateway, project=project, token=token, model=model, user=user, from_=from_,
                                     to=to, group_by=group_by)


async def summarize_usage(gateway: Services, *, project: str | None = None, token: str | None = None,
                          model: str | None = None, user: str | None = None, from_: str | None = None,
                          to: str | None = None, group_by: str | None = None) -> UsageSummary:
    """GET /manage/usage's answer for these query values (400 naming the parameter that is wrong); the admin UI
    calls it too."""
    group_by = group_by or None  # `group_by=` (empty) is not grouped, as an empty `from` is no bound
    if group_by is not None and group_by not in GROUP_BY:
        raise InvalidRequest(f"Invalid `group_by`: expected one of {', '.join(GROUP_BY)}, got {group_by!r}.",
                             param="group_by")
    from_time, to_time = parse_time(from_, "from"), parse_time(to, "to")
    if from_time is not None and to_time is not None and from_time > to_time:
        raise InvalidRequest("Invalid time range: `from` is after `to`.", param="from")
    query = UsageQuery(project_id=project, token_id=token, model=model, user=user, from_time=from_time,
                       to_time=to_time, group_by=group_by)  # type: ignore[arg-type]  # checked against GROUP_BY
    server = gateway.settings.server
    note = recording_note(server.usage_log, server.usage_store)
    return UsageSummary(recording=note is None, note=note, data=await gateway.store.summarize_usage(query))


def parse_time(value: str | None, param: str) -> float | None:
    """Unix seconds, or an ISO 8601 date or date-time (UTC unless it says otherwise); 400 naming `param`."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InvalidRequest(f"Invalid `{param}`: expected Unix seconds or an ISO 8601 date or time, got "
                             f"{value!r}.", param=param) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()
