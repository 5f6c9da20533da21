"""/manage/usage: what the store's `usage` table holds, filtered and grouped (see store/usage.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, get_args

from litestar import Controller, get
from litestar.params import Parameter, QueryParameter

from llmgate.errors import InvalidRequest
from llmgate.state import GatewayState
from llmgate.store.usage import GroupBy, UsageGroup, UsageQuery

GROUP_BY: tuple[str, ...] = get_args(GroupBy)


class UsageController(Controller):
    path = "/usage"
    tags = ["usage"]  # noqa: RUF012 - Litestar reads it as a plain class attribute

    @get("/")
    async def usage_summary(
        self, gateway: GatewayState,
        project: Annotated[str | None, Parameter(description="only this project id's requests")] = None,
        token: Annotated[str | None, Parameter(description="only this token id's requests")] = None,
        model: Annotated[str | None, Parameter(description="only requests for this model (alias)")] = None,
        from_: Annotated[str | None, QueryParameter(name="from", description=(
            "from this time on (inclusive): Unix seconds, or ISO 8601 (`2026-11-23`, `2026-11-23T20:00Z`; UTC "
            "when no offset is given)"))] = None,
        to: Annotated[str | None, Parameter(description="until this time (exclusive), as `from`")] = None,
        group_by: Annotated[str | None, Parameter(description="day, hour, model, project or token")] = None,
    ) -> list[UsageGroup]:
        """Requests, errors, tokens, cost and p50/p95 latency and overhead per group (one group, `all`, when
        not grouped); groups with no request are not listed."""
        if group_by is not None and group_by not in GROUP_BY:
            raise InvalidRequest(f"Invalid `group_by`: expected one of {', '.join(GROUP_BY)}, got {group_by!r}.",
                                 param="group_by")
        from_time, to_time = parse_time(from_, "from"), parse_time(to, "to")
        if from_time is not None and to_time is not None and from_time > to_time:
            raise InvalidRequest("Invalid time range: `from` is after `to`.", param="from")
        query = UsageQuery(project_id=project, token_id=token, model=model, from_time=from_time, to_time=to_time,
                           group_by=group_by)  # type: ignore[arg-type]  # checked against GROUP_BY above
        return await gateway.store.summarize_usage(query)


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
