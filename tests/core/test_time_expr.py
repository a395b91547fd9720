"""`$[...]` time expressions: one table per form, against a fixed base (Monday 2026-11-30)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.core.time_expr import TimeExprError, evaluate, format_java

BASE = datetime(2026, 11, 30, 2, 5, 9, 123000, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("yyyyMMdd", "20261130"),
        ("yyyy-MM-dd HH:mm:ss", "2026-11-30 02:05:09"),
        ("yyMMdd", "261130"),
        ("HHmmss", "020509"),
        ("hh a", "02 AM"),
        ("SSS", "123"),
        ("EEE MMM d", "Mon Nov 30"),
        ("EEEE, MMMM", "Monday, November"),
        ("D", "334"),
        ("u", "1"),
        ("yyyy-MM-dd'T'HH", "2026-11-30T02"),
        ("'at' HH 'o''clock'", "at 02 o'clock"),
    ],
)
def test_java_patterns_format_as_simple_date_format_does(pattern: str, text: str) -> None:
    assert format_java(pattern, BASE) == text


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("yyyyMMdd", "20261130"),
        ("yyyyMMdd+1", "20261201"),
        ("yyyyMMdd-1", "20261129"),
        ("yyyy-MM-dd", "2026-11-30"),  # a '-' followed by a letter is the pattern's
        ("yyyy-MM-dd-1", "2026-11-29"),
        ("yyyyMMdd-7*2", "20261116"),
        ("yyyyMMdd+7*1", "20261207"),
        ("HHmmss-1/24", "010509"),
        ("HHmmss+1/24", "030509"),
        ("HHmmss-10/24/60", "015509"),
        ("yyyyMMddHHmmss+30/24/60", "20261130023509"),
    ],
)
def test_day_hour_and_minute_arithmetic(expr: str, text: str) -> None:
    assert evaluate(expr, BASE) == text


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("add_months(yyyyMMdd,1)", "20261230"),
        ("add_months(yyyyMMdd,-12)", "20251130"),
        ("add_months(yyyy-MM-dd,3)", "2027-02-28"),  # clamped to the month's last day
        ("this_day(yyyy-MM-dd)", "2026-11-30"),
        ("last_day(yyyy-MM-dd)", "2026-11-29"),
        ("month_first_day(yyyy-MM-dd,0)", "2026-11-01"),
        ("month_first_day(yyyyMMdd,-1)", "20261001"),
        ("month_last_day(yyyy-MM-dd,0)", "2026-11-30"),
        ("month_last_day(yyyy-MM-dd,-9)", "2026-02-28"),
        ("month_begin(yyyyMMdd,1)", "20261201"),
        ("month_end(yyyyMMdd,1)", "20261231"),
        ("week_first_day(yyyy-MM-dd,0)", "2026-11-30"),
        ("week_first_day(yyyy-MM-dd,-1)", "2026-11-23"),
        ("week_last_day(yyyy-MM-dd,0)", "2026-12-06"),
        ("week_begin(yyyyMMdd,1)", "20261207"),
        ("week_end(yyyyMMdd,-1)", "20261129"),
        ("year_week(yyyy-MM-dd)", "2026-49"),
        ("year_week(yyyyMMdd)", "202649"),
        ("year_week(yyyy-MM-dd,7)", "2026-48"),  # weeks from Sunday: Monday is week 48's
        ("timestamp(yyyy-MM-dd)", str(int(datetime(2026, 11, 30, tzinfo=UTC).timestamp()))),
        ("timestamp(yyyyMMddHHmmss)", str(int(BASE.replace(microsecond=0).timestamp()))),
        ("timestamp(yyyyMMdd-1)", str(int(datetime(2026, 11, 29, tzinfo=UTC).timestamp()))),
    ],
)
def test_time_functions(expr: str, text: str) -> None:
    assert evaluate(expr, BASE) == text


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "+1",
        "nope(yyyy)",
        "add_months(yyyyMMdd,x)",
        "yyyyMMdd+1/0",
        "yyyyMMdd+1*",
        "year_week(yyyy,9)",
    ],
)
def test_what_is_no_time_expression_is_refused(expr: str) -> None:
    with pytest.raises(TimeExprError):
        evaluate(expr, BASE)
