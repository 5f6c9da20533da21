"""Budget periods: calendar periods in UTC, durations counted from the anchor, and the wire pattern."""

from __future__ import annotations

import datetime as dt
import math
import re

import msgspec
import pytest

from llmgate.access.periods import LIFETIME, BudgetPeriod, is_period, iso, window


def at(text: str) -> float:
    """An ISO date or date-time, UTC, as Unix seconds."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_lifetime_never_resets() -> None:
    assert window(None, 123.0, 1e9) == LIFETIME and LIFETIME.end == math.inf


def test_daily_starts_at_utc_midnight() -> None:
    now = at("2026-12-06T05:52:00")
    assert window("daily", 0, now) == (at("2026-12-06"), at("2026-12-07"))
    assert window("daily", 0, at("2026-12-07")).start == at("2026-12-07")  # the end belongs to the next day


def test_weekly_starts_on_monday() -> None:
    start, end = window("weekly", 0, at("2026-12-06T23:00:00"))  # a Sunday
    assert (iso(start), iso(end)) == ("2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")
    assert window("weekly", 0, at("2026-12-07")).start == at("2026-12-07")


def test_monthly_follows_the_calendar() -> None:
    assert window("monthly", 0, at("2026-12-31T23:59:00")) == (at("2026-12-01"), at("2027-01-01"))
    assert window("monthly", 0, at("2027-02-14")) == (at("2027-02-01"), at("2027-03-01"))


def test_durations_count_from_the_anchor() -> None:
    anchor = at("2026-12-01T10:00:00")
    assert window("12h", anchor, anchor + 5) == (anchor, anchor + 12 * 3600)
    assert window("12h", anchor, anchor + 13 * 3600).start == anchor + 12 * 3600
    assert window("30d", anchor, anchor + 31 * 86400) == (anchor + 30 * 86400, anchor + 60 * 86400)


@pytest.mark.parametrize("text", ["daily", "weekly", "monthly", "12h", "30d", "1h"])
def test_valid_periods(text: str) -> None:
    assert is_period(text)
    assert msgspec.convert(text, BudgetPeriod) == text


@pytest.mark.parametrize("text", ["hourly", "0d", "12", "3w", "-1d", "12h ", "Daily"])
def test_invalid_periods_are_refused_saying_what_is_expected(text: str) -> None:
    assert not is_period(text)
    with pytest.raises(msgspec.ValidationError, match=re.escape("daily|weekly|monthly")):
        msgspec.convert(text, BudgetPeriod)
    with pytest.raises(ValueError, match="not a budget period"):
        window(text, 0, 0)
