"""Budget periods: `daily`, `weekly`, `monthly` (UTC calendar) or a duration (`12h`, `30d`) counted from an
anchor (the token's or project's creation); absent, a budget lasts for life. Pure: `now` is passed in.

A period is the half-open interval [start, end); counters that belong to an earlier start count as zero.
"""

from __future__ import annotations

import calendar
import math
import re
import time
from typing import Annotated, NamedTuple

from msgspec import Meta

PERIOD_PATTERN = r"^(daily|weekly|monthly|[1-9][0-9]{0,5}[hd])$"
BudgetPeriod = Annotated[str, Meta(pattern=PERIOD_PATTERN, description=(
    "When the budgets and max_requests reset: `daily`, `weekly` (Monday), `monthly` (UTC calendar), or a duration "
    "from the creation time such as `12h` or `30d`; null or absent: never (a lifetime budget)."))]
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([hd])$")
_UNIT_S = {"h": 3600, "d": 86400}
_DAY_S = 86400
_MONDAY_S = 4 * _DAY_S  # the Unix epoch was a Thursday: 1970-01-05, four days on, a Monday


class Window(NamedTuple):
    """A period's bounds, Unix seconds; a lifetime budget's is (0, inf)."""

    start: float
    end: float


LIFETIME = Window(0.0, math.inf)


def is_period(text: str) -> bool:
    """Whether `text` names a period (the wire Structs check it with PERIOD_PATTERN; config uses this)."""
    return re.match(PERIOD_PATTERN, text) is not None


def window(period: str | None, anchor: float, now: float) -> Window:
    """The period holding `now`: for a duration, counted in whole durations from `anchor`."""
    if period is None:
        return LIFETIME
    if period == "daily":
        start = now - now % _DAY_S
        return Window(start, start + _DAY_S)
    if period == "weekly":
        start = now - (now - _MONDAY_S) % (7 * _DAY_S)
        return Window(start, start + 7 * _DAY_S)
    if period == "monthly":
        return _month(now)
    match = _DURATION.match(period)
    if match is None:
        raise ValueError(f"not a budget period: {period!r}")
    length = int(match[1]) * _UNIT_S[match[2]]
    start = anchor + max(math.floor((now - anchor) / length), 0) * length
    return Window(start, start + length)


def _month(now: float) -> Window:
    year, month = time.gmtime(now)[:2]
    start = calendar.timegm((year, month, 1, 0, 0, 0))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return Window(float(start), float(calendar.timegm((year, month, 1, 0, 0, 0))))


def describe(period: str | None) -> str:
    """`daily budget`, `12h budget`, or `budget` for a lifetime one: for messages."""
    return f"{period} budget" if period else "budget"


def iso(at: float) -> str:
    """A reset time as ISO 8601 UTC (`2026-12-07T00:00:00Z`)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
