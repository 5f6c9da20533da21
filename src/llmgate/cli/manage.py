"""`llmgate project ...`, `llmgate token ...`, `llmgate usage` and `llmgate audit`: the management API over HTTP,
tables or `--json`.

Exit codes: 0 done, 1 the API refused or could not be reached (its message printed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

PROJECT_COLUMNS = ("id", "name", "allowed_models", "max_requests", "rpm_limit", "tpm_limit", "budget_tokens",
                   "budget_cost", "budget_period", "description")
TOKEN_COLUMNS = ("id", "project_id", "prefix", "is_active", "request_count", "max_requests", "rpm_limit",
                 "tpm_limit", "budget_tokens", "budget_cost", "cost_used", "budget_period", "resets_at", "expires_at")
USAGE_COLUMNS = ("group", "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost",
                 "latency_p50_ms", "latency_p95_ms", "overhead_p50_ms", "overhead_p95_ms")
AUDIT_COLUMNS = ("id", "at", "actor", "client", "action", "target", "changes")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("LLMGATE_URL", "http://127.0.0.1:8000"),
                        help="the gateway (env LLMGATE_URL, default http://127.0.0.1:8000)")
    common.add_argument("--management-token", default=os.environ.get("LLMGATE_MANAGEMENT_TOKEN"),
                        help="bearer for /manage (env LLMGATE_MANAGEMENT_TOKEN)")
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _project_parsers(commands.add_parser("project", help="projects: create, list, get, update, delete")
                     .add_subparsers(dest="action", required=True), common)
    _token_parsers(commands.add_parser("token", help="virtual tokens: create, list, get, update, revoke, rotate")
                   .add_subparsers(dest="action", required=True), common)
    _usage_parser(commands.add_parser("usage", parents=[common], help="usage: requests, tokens, cost, latency"))
    _audit_parser(commands.add_parser("audit", parents=[common], help="the audit trail: who changed what, when"))


def _audit_parser(audit: argparse.ArgumentParser) -> None:
    audit.add_argument("--actor", help="only this actor's (management_token, jwt:<sub>, admin:<user>, system)")
    audit.add_argument("--action", help="only this action (project.create, token.rotate, config.reload, ...)")
    audit.add_argument("--target", help="only entries about this id")
    audit.add_argument("--from", dest="from_", metavar="TIME", help="from (Unix seconds or ISO 8601, UTC)")
    audit.add_argument("--to", metavar="TIME", help="until (exclusive)")
    audit.add_argument("--limit", type=int, default=50, help="entries to show (1-1000, default 50)")
    audit.add_argument("--cursor", type=int, help="continue after an earlier listing (its `next: --cursor N`)")
    audit.set_defaults(run=lambda a: _call(a, "GET", "/audit", None, AUDIT_COLUMNS, params={
        k: str(v) for k, v in (("actor", a.actor), ("action", a.action), ("target", a.target), ("from", a.from_),
                               ("to", a.to), ("limit", a.limit), ("cursor", a.cursor)) if v is not None}))


def _usage_parser(usage: argparse.ArgumentParser) -> None:
    usage.add_argument("--project", help="only this project id's requests")
    usage.add_argument("--token", help="only this token id's requests")
    usage.add_argument("--model", help="only this model's requests")
    usage.add_argument("--from", dest="from_", metavar="TIME", help="from (Unix seconds or ISO 8601, UTC)")
    usage.add_argument("--to", metavar="TIME", help="until (exclusive)")
    usage.add_argument("--user", help="only this end user's requests")
    usage.add_argument("--group-by", choices=("day", "hour", "model", "project", "token", "user"))
    usage.set_defaults(run=lambda a: _call(a, "GET", "/usage", None, USAGE_COLUMNS, params={
        k: v for k, v in (("project", a.project), ("token", a.token), ("model", a.model), ("user", a.user),
                          ("from", a.from_), ("to", a.to), ("group_by", a.group_by)) if v is not None}))


def _project_parsers(actions: Any, common: argparse.ArgumentParser) -> None:
    def fields(p: argparse.ArgumentParser, create: bool) -> None:
        if create:
            p.add_argument("name")
        else:
            p.add_argument("--name")
        p.add_argument("--description")
        p.add_argument("--model", action="append", dest="allowed_models", help="allowed model (repeatable)")
        p.add_argument("--metadata", type=json.loads, help="a JSON object")
        p.add_argument("--upstream-key", action="append", dest="upstream_keys", metavar="PROVIDER=KEY",
                       help="the project's own key for a provider (repeatable)")
        _limit_arguments(p, "the project's tokens together")
        p.add_argument("--per-user", type=json.loads, dest="per_user",
                       help='each end user\'s limits, a JSON object: {"rpm_limit": 10, "budget_tokens": 100000}')

    create = actions.add_parser("create", parents=[common], help="create a project")
    fields(create, True)
    create.set_defaults(run=lambda a: _call(a, "POST", "/projects", _project_body(a), PROJECT_COLUMNS))
    actions.add_parser("list", parents=[common], help="list projects").set_defaults(
        run=lambda a: _call(a, "GET", "/projects", None, PROJECT_COLUMNS))
    for name, method in (("get", "GET"), ("delete", "DELETE")):
        p = actions.add_parser(name, parents=[common], help=f"{name} a project")
        p.add_argument("id")
        p.set_defaults(run=lambda a, m=method: _call(a, m, f"/projects/{a.id}", None, PROJECT_COLUMNS))
    update = actions.add_parser("update", parents=[common], help="change a project")
    update.add_argument("id")
    fields(update, False)
    update.set_defaults(run=lambda a: _call(a, "PATCH", f"/projects/{a.id}", _project_body(a), PROJECT_COLUMNS))


def _token_parsers(actions: Any, common: argparse.ArgumentParser) -> None:
    def limits(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name")
        p.add_argument("--expires-in", help="lifetime, e.g. 3600s, 90m, 12h, 30d")
        _limit_arguments(p, "the token")
        p.add_argument("--model", action="append", dest="allowed_models", help="allowed model (repeatable)")

    create = actions.add_parser("create", parents=[common], help="create a token (its secret is shown once)")
    create.add_argument("--project", required=True, help="project id")
    limits(create)
    create.set_defaults(run=lambda a: _call(a, "POST", "/tokens", {"project_id": a.project, **_token_body(a)},
                                            (*TOKEN_COLUMNS, "secret")))
    listing = actions.add_parser("list", parents=[common], help="list tokens")
    listing.add_argument("--project", help="only this project's")
    state = listing.add_mutually_exclusive_group()
    state.add_argument("--active", action="store_const", const="true", dest="active")
    state.add_argument("--revoked", action="store_const", const="false", dest="active")
    listing.set_defaults(run=lambda a: _call(a, "GET", "/tokens", None, TOKEN_COLUMNS, params={
        k: v for k, v in (("project_id", a.project), ("active", a.active)) if v is not None}))
    for name, method, suffix in (("get", "GET", ""), ("revoke", "DELETE", ""), ("rotate", "POST", "/rotate")):
        p = actions.add_parser(name, parents=[common], help=f"{name} a token")
        p.add_argument("id")
        columns = (*TOKEN_COLUMNS, "secret") if name == "rotate" else TOKEN_COLUMNS
        p.set_defaults(run=lambda a, m=method, s=suffix, c=columns: _call(a, m, f"/tokens/{a.id}{s}", None, c))
    update = actions.add_parser("update", parents=[common], help="change a token's limits")
    update.add_argument("id")
    limits(update)
    update.set_defaults(run=lambda a: _call(a, "PATCH", f"/tokens/{a.id}", _token_body(a), TOKEN_COLUMNS))


_LIMITS = ("max_requests", "rpm_limit", "tpm_limit", "budget_tokens", "budget_cost", "budget_period",
           "alert_threshold", "queue_ms")


def _limit_arguments(p: argparse.ArgumentParser, who: str) -> None:
    p.add_argument("--max-requests", type=int, help=f"requests {who} may make (per budget period)")
    p.add_argument("--rpm", type=int, dest="rpm_limit", help="requests per minute")
    p.add_argument("--tpm", type=int, dest="tpm_limit", help="LLM tokens per minute")
    p.add_argument("--budget-tokens", type=int, help=f"LLM tokens {who} may use (per budget period)")
    p.add_argument("--budget-cost", type=float, help="spend (per budget period), in the [prices] currency")
    p.add_argument("--budget-period", help="when the budgets reset: daily, weekly, monthly, or e.g. 12h, 30d "
                                           "(default: never)")
    p.add_argument("--alert-threshold", type=float, help="alert past this fraction of a budget, e.g. 0.8")
    p.add_argument("--queue-ms", type=int, help="how long a request over rpm/tpm may wait for a slot (ms)")


def _project_body(args: argparse.Namespace) -> dict[str, Any]:
    body = {k: getattr(args, k) for k in ("name", "description", "allowed_models", "metadata", *_LIMITS, "per_user")
            if getattr(args, k, None) is not None}
    if args.upstream_keys:
        pairs = [item.partition("=") for item in args.upstream_keys]
        if any(not provider or not key for provider, _, key in pairs):
            raise UsageError("--upstream-key: expected PROVIDER=KEY")
        body["upstream_keys"] = {provider: key for provider, _, key in pairs}
    return body


def _token_body(args: argparse.Namespace) -> dict[str, Any]:
    body = {k: getattr(args, k) for k in ("name", *_LIMITS, "allowed_models") if getattr(args, k) is not None}
    if args.expires_in:
        body["expires_at"] = time.time() + parse_duration(args.expires_in)
    return body


def parse_duration(text: str) -> float:
    """`90m` → 5400.0; a bare number is seconds."""
    unit = text[-1:] if text[-1:] in _DURATION_UNITS else "s"
    number = text[:-1] if text[-1:] in _DURATION_UNITS else text
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"--expires-in: expected a duration like 3600s, 90m, 12h or 30d, got {text!r}") from None
    if value <= 0:
        raise UsageError("--expires-in: expected a positive duration")
    return value * _DURATION_UNITS[unit]


class UsageError(Exception):
    """The command line is wrong (exit 2)."""


def _call(args: argparse.Namespace, method: str, path: str, body: Any, columns: tuple[str, ...],
          params: dict[str, str] | None = None) -> int:
    import httpx  # here, not at the top: `llmgate serve` must not pay for the CLI's HTTP client

    if not args.management_token:
        print("llmgate: no management token: pass --management-token or set LLMGATE_MANAGEMENT_TOKEN",
              file=sys.stderr)
        return 2
    url = f"{args.url.rstrip('/')}/manage{path}"
    try:
        response = httpx.request(method, url, json=body, params=params, timeout=30,
                                 headers={"authorization": f"Bearer {args.management_token}"})
    except httpx.HTTPError as exc:
        print(f"llmgate: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400:
        message = data["error"]["message"] if isinstance(data, dict) and "error" in data else response.text
        print(f"llmgate: {method} /manage{path} failed ({response.status_code}): {message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    if path == "/usage":
        return _print_usage(data, columns)
    if path == "/audit":
        return _print_audit(data, columns)
    print(render_table(data if isinstance(data, list) else [data], columns))
    if isinstance(data, dict) and data.get("secret"):
        print(f"\nsecret (shown once, store it now): {data['secret']}")
    return 0


def _print_usage(summary: dict[str, Any], columns: tuple[str, ...]) -> int:
    """The usage groups; when the gateway records no usage, say so instead of an empty table that would read
    as "no traffic" (exit 1 when there is nothing to show)."""
    rows = summary.get("data", [])
    if summary.get("recording", True):
        print(render_table(rows, columns))
        return 0
    if rows:
        print(render_table(rows, columns))
    print(f"llmgate: {summary.get('note') or 'this gateway records no usage.'}", file=sys.stderr)
    return 0 if rows else 1


def _print_audit(page: dict[str, Any], columns: tuple[str, ...]) -> int:
    rows = [{**row, "changes": _changes_text(row.get("changes") or {})} for row in page.get("data", [])]
    print(render_table(rows, columns))
    if page.get("next_cursor") is not None:
        print(f"llmgate: more entries: --cursor {page['next_cursor']}", file=sys.stderr)
    return 0


def _changes_text(changes: dict[str, dict[str, Any]]) -> str:
    """`name: app → web; rpm_limit: - → 60` (a side that does not exist shown as `-`)."""
    def shown(value: Any) -> str:
        return "-" if value is None else json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) \
            else str(value)
    return "; ".join(f"{field}: {shown(change.get('before'))} → {shown(change.get('after'))}"
                     for field, change in changes.items())


def render_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """A plain text table; lists joined with commas, missing values as `-`, times as UTC dates."""
    shown = [c for c in columns if c != "secret"]
    cells = [[_cell(c, row.get(c)) for c in shown] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(shown)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def _cell(column: str, value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if column == "at" and isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value))
    if column.endswith("_at") and isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
