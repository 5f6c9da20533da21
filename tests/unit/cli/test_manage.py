"""The CLI's pure parts: durations and tables."""

import pytest

from llmgate.cli.manage import UsageError, parse_duration, render_table


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "90m", "12h", "30d")] == [90, 90, 5400, 43200, 2592000]
    for bad in ("soon", "0", "-5m", "m"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_table() -> None:
    rows = [{"id": "tok_1", "allowed_models": ["a", "b"], "is_active": True, "expires_at": 0, "rpm_limit": None}]
    table = render_table(rows, ("id", "allowed_models", "is_active", "expires_at", "rpm_limit", "secret"))
    assert table.splitlines() == ["ID     ALLOWED_MODELS  IS_ACTIVE  EXPIRES_AT        RPM_LIMIT",
                                  "tok_1  a,b             yes        1970-01-01 00:00  -"]
    assert render_table([], ("id",)).endswith("(none)")

