"""Cron expressions (Quartz as DolphinScheduler stores them, and Unix) and their fire times,
daylight saving included; the deterministic id of a scheduled instance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from streams.core.cron import InvalidCron, parse_cron
from streams.core.ids import scheduled_instance_id

BERLIN = ZoneInfo("Europe/Berlin")


def times(expr: str, after: datetime, n: int = 3, tz: str = "UTC") -> list[str]:
    return [t.isoformat() for t in parse_cron(expr, tz).fire_times(after, limit=n)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0 0 2 * * ? *", ["2024-03-02T02:00:00+08:00", "2024-03-03T02:00:00+08:00"]),
        ("0 0 2 * * ?", ["2024-03-02T02:00:00+08:00", "2024-03-03T02:00:00+08:00"]),
        ("0 0 2 ? * 2-6 *", ["2024-03-04T02:00:00+08:00", "2024-03-05T02:00:00+08:00"]),  # Mon-Fri
        ("0 0 2 ? * MON-FRI", ["2024-03-04T02:00:00+08:00", "2024-03-05T02:00:00+08:00"]),
        ("0 0 12 ? * 1,7", ["2024-03-02T12:00:00+08:00", "2024-03-03T12:00:00+08:00"]),  # Sat, Sun
        ("0 0 12 ? * 6#3", ["2024-03-15T12:00:00+08:00", "2024-04-19T12:00:00+08:00"]),  # 3rd Fri
        ("0 0 12 ? * 6L", ["2024-03-29T12:00:00+08:00", "2024-04-26T12:00:00+08:00"]),  # last Fri
        ("0 0 12 L * ? *", ["2024-03-31T12:00:00+08:00", "2024-04-30T12:00:00+08:00"]),
        ("*/2 * * * * ?", ["2024-03-01T08:00:02+08:00", "2024-03-01T08:00:04+08:00"]),
        ("30 2 * * 1-5", ["2024-03-04T02:30:00+08:00", "2024-03-05T02:30:00+08:00"]),  # Unix
        ("0 3 * * 0", ["2024-03-03T03:00:00+08:00", "2024-03-10T03:00:00+08:00"]),  # Unix Sun
    ],
)
def test_fire_times_in_the_schedules_timezone(expr: str, expected: list[str]) -> None:
    after = datetime(2024, 3, 1, tzinfo=UTC)

    assert times(expr, after, n=2, tz="Asia/Shanghai") == expected


def test_a_year_in_the_past_never_fires() -> None:
    assert times("0 0 2 * * ? 2023", datetime(2024, 1, 1, tzinfo=UTC)) == []


def test_fire_times_stop_at_until_and_at_the_limit() -> None:
    cron = parse_cron("0 0 * * * ?")
    after = datetime(2024, 1, 1, tzinfo=UTC)

    until = list(cron.fire_times(after, until=after + timedelta(hours=3)))
    limited = list(cron.fire_times(after, limit=2))

    assert [t.hour for t in until] == [1, 2, 3]
    assert [t.hour for t in limited] == [1, 2]


def test_a_time_that_does_not_exist_fires_right_after_the_gap() -> None:
    # 2024-03-31 in Berlin jumps from 02:00 to 03:00: 02:30 does not exist that day.
    fired = times("0 30 2 * * ?", datetime(2024, 3, 30, 12, tzinfo=BERLIN), tz="Europe/Berlin")

    assert fired == [
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
        "2024-04-02T02:30:00+02:00",
    ]


def test_a_time_that_exists_twice_fires_once() -> None:
    # 2024-10-27 in Berlin goes back from 03:00 to 02:00: 02:30 comes twice.
    fired = times("0 30 2 * * ?", datetime(2024, 10, 26, 12, tzinfo=BERLIN), tz="Europe/Berlin")

    assert fired == [
        "2024-10-27T02:30:00+02:00",
        "2024-10-28T02:30:00+01:00",
        "2024-10-29T02:30:00+01:00",
    ]


def test_an_hourly_schedule_fires_each_wall_clock_hour_once_on_a_fall_back_night() -> None:
    fired = times("0 0 * * * ?", datetime(2024, 10, 27, 0, 30, tzinfo=BERLIN), 4, "Europe/Berlin")

    assert fired == [
        "2024-10-27T01:00:00+02:00",
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T03:00:00+01:00",  # the second 02:00 (+01:00) is the same wall time
        "2024-10-27T04:00:00+01:00",
    ]


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("0 0 2 * * *", "'?' in exactly one of day-of-month and day-of-week"),
        ("0 0 2 ? * ?", "'?' in exactly one of day-of-month and day-of-week"),
        ("0 0 25 * * ? *", "out of range"),
        ("a b c d e", "is not acceptable"),
        ("0 0 2", "expected 5 fields (Unix"),
    ],
)
def test_an_invalid_cron_names_its_problem(expr: str, problem: str) -> None:
    with pytest.raises(InvalidCron) as refused:
        parse_cron(expr)

    assert any(problem in p for p in refused.value.problems), refused.value.problems


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(InvalidCron) as refused:
        parse_cron("0 0", "Mars/Base")

    assert len(refused.value.problems) == 2
    assert "timezone: expected an IANA name" in refused.value.problems[0]


def test_fire_times_need_an_aware_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        next(parse_cron("0 * * * *").fire_times(datetime(2024, 1, 1)))


def test_a_fire_time_names_one_instance_whatever_its_zone() -> None:
    in_utc = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)
    in_shanghai = in_utc.astimezone(ZoneInfo("Asia/Shanghai"))

    assert scheduled_instance_id("nightly", in_utc) == scheduled_instance_id("nightly", in_shanghai)
    assert scheduled_instance_id("nightly", in_utc) != scheduled_instance_id("other", in_utc)
    assert scheduled_instance_id("nightly", in_utc) != scheduled_instance_id(
        "nightly", in_utc + timedelta(seconds=1)
    )
    # Pinned: a changed derivation would start a second instance for fire times already fired.
    assert scheduled_instance_id("nightly", in_utc) == "e8a62cb3-7f23-5079-8ab5-e7fc3c8660df"
    with pytest.raises(ValueError, match="instant"):
        scheduled_instance_id("nightly", datetime(2024, 6, 1))
