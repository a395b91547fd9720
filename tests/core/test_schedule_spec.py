"""Parsing a schedule from plain values: every problem named at once."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from streams.core.definition import DEFAULT_WORKER_GROUP, TaskDef, WorkflowDef
from streams.core.enums import FailureStrategy, Priority
from streams.core.schedules.spec import (
    InvalidSchedule,
    Misfire,
    ScheduleSpec,
    WarningType,
    parse_schedule,
    run_settings,
    spec_to_dict,
)


def test_a_full_schedule_parses_and_reads_back() -> None:
    spec = parse_schedule(
        {
            "workflow_code": "etl", "cron": "0 0 2 * * ? *", "timezone": "Asia/Shanghai",
            "start_time": "2026-12-01T00:00", "end_time": "2027-01-01T00:00+00:00",
            "misfire": "latest", "catch_up_window_s": "2h", "failure_strategy": "end",
            "workflow_priority": "HIGH", "worker_group": "etl", "warning_type": "failure",
            "warning_group_id": 3, "params": {"day": "1"},
        }
    )  # fmt: skip
    assert spec.start_time == datetime(2026, 12, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert spec.end_time == datetime(2027, 1, 1, tzinfo=UTC)
    assert (spec.misfire, spec.catch_up_window_s) == (Misfire.LATEST, 7200.0)
    assert spec.failure_strategy is FailureStrategy.END
    assert (spec.workflow_priority, spec.warning_type) == (Priority.HIGH, WarningType.FAILURE)
    assert parse_schedule(spec_to_dict(spec)) == spec


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule(
            {
                "workflow_code": "etl", "cron": "0 0 2 * * *", "timezone": "Mars/Base",
                "start_time": "yesterday", "misfire": "SOMETIMES", "colour": "red",
                "params": {"PATH": "/tmp"},
            }
        )  # fmt: skip
    text = "\n".join(caught.value.problems)
    for expected in (
        "colour: not a schedule field",
        "start_time: expected an ISO 8601 time",
        "misfire: expected one of ALL, LATEST, found 'SOMETIMES'",
        "timezone: expected an IANA name",
        "'?' in exactly one of day-of-month and day-of-week",
    ):
        assert expected in text, text


def test_end_before_start_and_a_reserved_parameter_are_named() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule(
            {
                "workflow_code": "etl", "cron": "0 2 * * *", "start_time": "2026-12-02T00:00Z",
                "end_time": "2026-12-01T00:00Z", "params": {"LD_PRELOAD": "x.so"},
            }
        )  # fmt: skip
    text = "\n".join(caught.value.problems)
    assert "end_time: expected after start_time" in text
    assert "params: expected parameter names the shell" in text


def test_missing_workflow_and_cron_are_named() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse_schedule({})
    assert [p.split(":")[0] for p in caught.value.problems] == ["workflow_code", "cron"]


def test_run_settings_apply_the_failure_strategy_and_the_default_group_only() -> None:
    wf = WorkflowDef(code="etl", tasks=(TaskDef(code="a"), TaskDef(code="b", worker_group="gpu")))
    spec = ScheduleSpec(workflow_code="etl", cron="0 2 * * *", worker_group="etl-hosts",
                        failure_strategy=FailureStrategy.END)  # fmt: skip
    started = run_settings(wf, spec)
    assert started.failure_strategy is FailureStrategy.END
    assert [t.worker_group for t in started.tasks] == ["etl-hosts", "gpu"]
    plain = ScheduleSpec(workflow_code="etl", cron="0 2 * * *")
    assert [t.worker_group for t in run_settings(wf, plain).tasks] == [DEFAULT_WORKER_GROUP, "gpu"]
