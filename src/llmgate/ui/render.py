"""Pages as HTML responses: the Jinja templates (autoescaped) and the headers every UI response carries."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import jinja2
from litestar import Request, Response

from llmgate import __version__

TEMPLATES = Path(__file__).parent / "templates"
HTMX = "vendor/htmx-2.0.11.min.js"
# Everything is served from /ui itself: no inline script or style, no frames, forms post only here.
SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
VIEWER = "ui_viewer"
"""Where the sign-in guard leaves the Viewer in the request's state."""
NAV = (("Overview", "/ui/"), ("Projects", "/ui/projects"), ("Tokens", "/ui/tokens"), ("Usage", "/ui/usage"),
       ("Deployments", "/ui/deployments"), ("Configuration", "/ui/config"))


def when(timestamp: float | None) -> str:
    """Unix seconds as `2026-12-06 07:15 UTC` (empty for None)."""
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def number(value: float | None, digits: int = 0) -> str:
    """A count or amount with thousands separators; an en dash for None."""
    if value is None:
        return "\N{EN DASH}"
    return f"{value:,.{digits}f}" if digits else f"{round(value):,}"


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when, number=number)
    env.globals.update(nav=NAV, version=__version__, htmx=HTMX)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def page(request: Request[Any, Any, Any], template: str, status_code: int = 200, **context: Any) -> Response[str]:
    """`template` rendered as a full page (or, for an htmx request naming a fragment, just that fragment), with
    who is signed in and their CSRF token in the context."""
    viewer = request.state.get(VIEWER)
    context.setdefault("notice", None)
    html = render(template, request_path=request.url.path, viewer=viewer,
                  csrf=viewer.csrf if viewer is not None else "", **context)
    return Response(html, status_code=status_code, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)
