"""A backfill request: validation naming every problem, the dates it runs, derived ids."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.core.schedules.backfill import (
    MAX_DATE_LIST,
    BackfillCron,
    BackfillSpec,
    ExecutionOrder,
    InvalidBackfill,
    backfill_dates,
    backfill_problems,
    backfill_to_dict,
    date_command_id,
    date_instance_id,
    parse_backfill,
)

D1 = datetime(2026, 11, 1, tzinfo=UTC)


def spec(**kw: Any) -> BackfillSpec:
    base = BackfillSpec(workflow_code="etl", start_date=D1, end_date=D1 + timedelta(days=2))
    return replace(base, **kw)


def test_range_without_schedules_is_daily_at_midnight_descending_by_default() -> None:
    assert backfill_dates(spec()) == (
        D1 + timedelta(days=2),
        D1 + timedelta(days=1),
        D1,
    )


def test_range_is_expanded_by_every_cron_ascending_when_asked() -> None:
    dates = backfill_dates(
        spec(
            crons=(BackfillCron(cron="0 0 2 * * ? *"), BackfillCron(cron="0 0 14 * * ? *")),
            end_date=D1 + timedelta(days=1, hours=23),
            order=ExecutionOrder.ASC,
        )
    )
    assert dates == (
        D1 + timedelta(hours=2),
        D1 + timedelta(hours=14),
        D1 + timedelta(days=1, hours=2),
        D1 + timedelta(days=1, hours=14),
    )


def test_crons_are_read_in_their_timezone() -> None:
    dates = backfill_dates(
        spec(
            crons=(BackfillCron(cron="0 0 2 * * ? *", timezone="Asia/Shanghai"),),
            end_date=D1 + timedelta(hours=20),
        )
    )
    assert dates == (datetime(2026, 11, 1, 18, tzinfo=UTC),)  # 02:00 on the 2nd in Shanghai


def test_a_list_is_deduplicated_as_instants_and_ordered() -> None:
    shanghai_d1 = D1.astimezone(ZoneInfo("Asia/Shanghai"))
    dates = backfill_dates(
        spec(
            start_date=None,
            end_date=None,
            dates=(D1 + timedelta(days=3), D1, shanghai_d1),
            order=ExecutionOrder.ASC,
        )
    )
    assert dates == (D1, D1 + timedelta(days=3))


def test_every_problem_is_named_at_once() -> None:
    problems = backfill_problems(
        spec(
            start_date=D1,
            end_date=D1 - timedelta(days=1),
            parallelism=0,
            crons=(BackfillCron(cron="bad cron"),),
            worker_group="",
            params={"PATH": "/x"},
        )
    )
    text = "; ".join(problems)
    assert "end_date: expected at or after start_date" in text
    assert "parallelism: expected 1 or more, found 0" in text
    assert "cron:" in text
    assert "worker_group" in text
    assert "params: " in text


def test_a_list_over_100_dates_is_refused() -> None:
    dates = tuple(D1 + timedelta(days=i) for i in range(MAX_DATE_LIST + 1))
    problems = backfill_problems(spec(start_date=None, end_date=None, dates=dates))
    assert problems == [f"dates: expected at most 100 dates, found {MAX_DATE_LIST + 1}"]


def test_a_list_of_100_duplicated_dates_is_fine() -> None:
    dates = tuple(D1 + timedelta(days=i % 100) for i in range(150))
    assert backfill_problems(spec(start_date=None, end_date=None, dates=dates)) == []


def test_both_a_range_and_a_list_or_neither_is_refused() -> None:
    assert "found both" in backfill_problems(spec(dates=(D1,)))[0]
    assert "found neither" in backfill_problems(spec(start_date=None, end_date=None))[0]
    assert "end_date: expected both ends" in backfill_problems(spec(end_date=None))[0]


def test_a_range_without_a_fire_time_is_refused() -> None:
    problems = backfill_problems(
        spec(end_date=D1 + timedelta(hours=1), start_date=D1 + timedelta(minutes=1))
    )
    assert problems and "found none" in problems[0]


def test_invalid_backfill_raises_with_its_problems() -> None:
    with pytest.raises(InvalidBackfill) as exc:
        backfill_dates(spec(parallelism=-1))
    assert exc.value.problems == ["parallelism: expected 1 or more, found -1"]


def test_date_ids_derive_from_request_and_instant() -> None:
    shanghai = D1.astimezone(ZoneInfo("Asia/Shanghai"))
    assert date_instance_id("req-1", D1) == date_instance_id("req-1", shanghai)
    assert date_command_id("req-1", D1) == date_command_id("req-1", shanghai)
    assert date_instance_id("req-1", D1) != date_instance_id("req-2", D1)
    assert date_instance_id("req-1", D1) != date_instance_id("req-1", D1 + timedelta(days=1))


@given(
    st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=100),
    st.sampled_from(list(ExecutionOrder)),
)
def test_a_list_runs_each_date_once_in_order(days: list[int], order: ExecutionOrder) -> None:
    dates = backfill_dates(
        spec(
            start_date=None,
            end_date=None,
            dates=tuple(D1 + timedelta(days=d) for d in days),
            order=order,
        )
    )
    assert sorted(dates) == sorted({D1 + timedelta(days=d) for d in days})
    assert list(dates) == sorted(dates, reverse=order is ExecutionOrder.DESC)
    assert len({date_instance_id("r", d) for d in dates}) == len(dates)


def test_parse_reads_plain_values_and_names_every_problem() -> None:
    parsed = parse_backfill(
        {
            "workflow_code": "etl",
            "dates": ["2026-11-02", "2026-11-01T00:00+00:00"],
            "order": "asc_order",
            "run_mode": "parallel",
            "parallelism": 2,
            "crons": [{"cron": "0 0 2 * * ? *", "timezone": "Asia/Shanghai"}],
        }
    )
    assert parsed.dates == (D1 + timedelta(days=1), D1)
    assert parsed.order is ExecutionOrder.ASC and parsed.parallelism == 2
    assert parse_backfill(backfill_to_dict(parsed)) == parsed
    with pytest.raises(InvalidBackfill) as exc:
        parse_backfill(
            {
                "start_date": "2026-11-02",
                "end_date": "yesterday",
                "parallelism": 0,
                "order": "up",
                "colour": "red",
            }
        )
    text = "; ".join(exc.value.problems)
    for name in ("colour", "workflow_code", "end_date", "order", "parallelism"):
        assert f"{name}:" in text


def test_dates_out_of_the_computable_years_are_refused_not_raised() -> None:
    edge = datetime(1, 1, 1, tzinfo=UTC)
    problems = backfill_problems(spec(start_date=edge, end_date=D1))
    assert problems == [f"dates: expected years 1900 to 9000, found {edge.isoformat()}"]
    with pytest.raises(InvalidBackfill):
        parse_backfill({"workflow_code": "etl", "dates": ["9999-12-31T23:59:59-23:59"]})
