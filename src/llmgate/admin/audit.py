"""/manage/audit: the audit trail of management actions, newest first, filtered, a page at a time. Read-only:
no route changes or deletes an entry (the retention setting prunes old ones)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import Parameter, QueryParameter

from llmgate.admin.access import error_responses
from llmgate.admin.usage import parse_time
from llmgate.errors import InvalidRequest
from llmgate.services import Services
from llmgate.store.audit import AuditEntry, AuditQuery


class AuditPage(msgspec.Struct, kw_only=True, frozen=True):
    """A page of entries, newest first; `next_cursor` fetches the next (older) page, null after the last."""

    object: str = "list"
    data: list[AuditEntry]
    next_cursor: int | None = None


class AuditController(Controller):
    path = "/audit"
    tags = ["audit"]  # noqa: RUF012 - Litestar reads it as a plain class attribute

    @get("/", responses=error_responses(400, 422))
    async def list_audit(
        self, gateway: Services,
        actor: Annotated[str | None, Parameter(description="only this actor's entries (`management_token`, "
                                                           "`jwt:<sub>`, `admin:<user>`, `system`)")] = None,
        action: Annotated[str | None, Parameter(description="only this action (`token.rotate`, ...)")] = None,
        target: Annotated[str | None, Parameter(description="only entries about this id")] = None,
        from_: Annotated[str | None, QueryParameter(name="from", description=(
            "from this time on (inclusive): Unix seconds or ISO 8601 (UTC when no offset is given)"))] = None,
        to: Annotated[str | None, Parameter(description="until this time (exclusive), as `from`")] = None,
        cursor: Annotated[int | None, Parameter(description="the `next_cursor` of the previous page")] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000, description="entries per page (1-1000)")] = 100,
    ) -> AuditPage:
        """Who did what, when, from where, and what changed (before → after; secrets masked)."""
        from_time, to_time = parse_time(from_, "from"), parse_time(to, "to")
        if from_time is not None and to_time is not None and from_time > to_time:
            raise InvalidRequest("Invalid time range: `from` is after `to`.", param="from")
        query = AuditQuery(actor=actor, action=action, target=target, from_time=from_time, to_time=to_time,
                           before_id=cursor, limit=limit + 1)  # one more: whether another page follows
        rows = await gateway.audit.list(query)
        page = rows[:limit]
        more = len(rows) > limit
        return AuditPage(data=page, next_cursor=page[-1].id if more and page else None)
