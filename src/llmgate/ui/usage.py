"""/ui/usage: GET /manage/usage's filters and grouping as a table and a chart, and as CSV (/ui/usage.csv)."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get

from llmgate.admin.usage import GROUP_BY, UsageSummary, summarize_usage
from llmgate.errors import GatewayError
from llmgate.services import Services
from llmgate.store.usage import UsageGroup
from llmgate.ui.charts import bar_chart
from llmgate.ui.forms import gateway_errors
from llmgate.ui.render import page

FILTERS = ("project", "token", "model", "from", "to", "group_by")
COLUMNS = tuple(UsageGroup.__struct_fields__)


async def summary(gateway: Services, query: dict[str, str]) -> UsageSummary:
    """The management API's summary for the page's query (empty fields: no filter)."""
    given = {k: v.strip() or None for k, v in query.items()}
    return await summarize_usage(gateway, project=given["project"], token=given["token"], model=given["model"],
                                 from_=given["from"], to=given["to"], group_by=given["group_by"])


def csv_text(groups: list[UsageGroup]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for group in groups:
        writer.writerow(["" if (v := getattr(group, c)) is None else v for c in COLUMNS])
    return out.getvalue()


def query_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {name: str(request.query_params.get(name) or "") for name in FILTERS}


class UsagePage(Controller):
    path = "/"

    @get("/usage")
    async def usage(self, request: Request[Any, Any, Any], gateway: Services) -> Response[Any]:
        query = query_of(request)
        projects = await gateway.store.list_projects()
        try:
            result: UsageSummary | None = await summary(gateway, query)
            errors: dict[str, str] = {}
        except GatewayError as exc:
            result, errors = None, gateway_errors(exc, FILTERS)
        chart = None
        if result is not None and result.data:
            names = {p.id: p.name for p in projects}
            labels = [names.get(g.group or "", g.group or "(none)") for g in result.data]
            chart = bar_chart("Requests per group (errors darker)", labels,
                              [float(g.requests) for g in result.data], [float(g.errors) for g in result.data],
                              "errors")
        return page(request, "usage.html", status_code=400 if errors else 200, query=query, errors=errors,
                    result=result, chart=chart, group_options=[("", "No grouping"), *((g, g) for g in GROUP_BY)],
                    project_options=[("", "All projects"), *((p.id, p.name) for p in projects)],
                    csv_query=urlencode({k: v for k, v in query.items() if v}))

    @get("/usage.csv")
    async def usage_csv(self, request: Request[Any, Any, Any], gateway: Services) -> Response[Any]:
        try:
            result = await summary(gateway, query_of(request))
        except GatewayError as exc:
            return Response(exc.message + "\n", status_code=400, media_type="text/plain; charset=utf-8")
        return Response(csv_text(result.data), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": 'attachment; filename="llmgate-usage.csv"',
                                 "cache-control": "no-store"})
