"""A backfill request (DolphinScheduler's complement data, §3.12) and its dates (pure).

A backfill runs a registered workflow once per date: either a range (start, end, both
inclusive) expanded by the crons of the workflow's online schedules (daily at 00:00 when it
has none), or an explicit list of dates (de-duplicated as instants, at most 100). Dates run
ascending or descending (DolphinScheduler's default: descending), SERIAL (the next date
starts only when the previous instance ended SUCCESS; a failure ends the chain) or PARALLEL
(up to `parallelism` instances at once, the next when one ends), with the run settings a
schedule's fire takes. `backfill_problems` names every problem at once.

The crons are part of the request: the producer (the API) reads the online schedules of the
workflow from the read model and puts their crons in the command, and the scheduler expands
them once, when it decides the request, into the date list `BackfillRequested` records. A
replay never expands again, so a schedule changed later does not change a backfill.

Each date's instance id and command id derive from (backfill command id, date), so a
redelivered request, or a start sent again after a crash, starts nothing twice.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from streams.core.cron import Cron, InvalidCron, parse_cron
from streams.core.definition import DEFAULT_WORKER_GROUP
from streams.core.enums import FailureStrategy, Priority
from streams.core.ids import TIDEFLOW_NS
from streams.core.params import param_problems
from streams.core.schedules.spec import ScheduleSpec, WarningType

MAX_DATE_LIST: Final = 100  # DolphinScheduler's limit on complementScheduleDateList
MAX_DATES: Final = 1000  # a range expanding to more is refused (an every-second cron...)
DAILY: Final = "0 0 0 * * ? *"  # the expansion when the workflow has no online schedule
_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_JUST_BEFORE: Final = timedelta(microseconds=1)


class RunMode(StrEnum):
    """DolphinScheduler's RUN_MODE_SERIAL (0, default) / RUN_MODE_PARALLEL (1)."""

    SERIAL = "SERIAL"
    PARALLEL = "PARALLEL"


class ExecutionOrder(StrEnum):
    """DolphinScheduler's DESC_ORDER (0, default) / ASC_ORDER (1)."""

    DESC = "DESC"
    ASC = "ASC"


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillSpec:
    """What a user asks for: a range or a list of dates, how to run them, the run settings."""

    workflow_code: str
    start_date: datetime | None = None  # a range: both given, both inclusive
    end_date: datetime | None = None
    dates: tuple[datetime, ...] = ()  # or a list (at most 100)
    crons: tuple[str, ...] = ()  # the online schedules' crons (none: daily at 00:00)
    timezone: str = "UTC"  # the crons' timezone
    order: ExecutionOrder = ExecutionOrder.DESC
    run_mode: RunMode = RunMode.SERIAL
    parallelism: int = 1  # PARALLEL only: instances at once
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE
    workflow_priority: Priority = Priority.MEDIUM
    worker_group: str = DEFAULT_WORKER_GROUP
    warning_type: WarningType = WarningType.NONE
    warning_group_id: int = 0
    params: dict[str, str] = field(default_factory=dict)

    def run_settings(self) -> ScheduleSpec:
        """The run settings as a schedule holds them (`spec.run_settings` applies them)."""
        return ScheduleSpec(
            workflow_code=self.workflow_code,
            cron=DAILY,
            failure_strategy=self.failure_strategy,
            workflow_priority=self.workflow_priority,
            worker_group=self.worker_group,
            warning_type=self.warning_type,
            warning_group_id=self.warning_group_id,
            params=dict(self.params),
        )


def backfill_id_problem(backfill_id: str) -> str | None:
    if _ID.match(backfill_id):
        return None
    return (
        "backfill id: expected letters, digits, '_', '.', '-' (at most 128, starting with a "
        f"letter or digit), found {backfill_id!r}"
    )


def _crons(spec: BackfillSpec, problems: list[str]) -> list[Cron]:
    out: list[Cron] = []
    for expression in spec.crons or (DAILY,):
        try:
            out.append(parse_cron(expression, spec.timezone))
        except InvalidCron as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    return out


def backfill_problems(spec: BackfillSpec) -> list[str]:
    """Every reason `spec` cannot be a backfill (empty: it can); the range's expansion is
    checked too (no date in it, or more than `MAX_DATES`)."""
    problems: list[str] = []
    if not _ID.match(spec.workflow_code):
        problems.append(f"workflow_code: expected a workflow code, found {spec.workflow_code!r}")
    start, end = spec.start_date, spec.end_date
    ranged = start is not None or end is not None
    if ranged and spec.dates:
        problems.append("dates: expected a range (start_date, end_date) or a list, found both")
    elif not ranged and not spec.dates:
        problems.append("dates: expected a range (start_date, end_date) or a list, found neither")
    elif ranged and (start is None or end is None):
        missing = "start_date" if start is None else "end_date"
        problems.append(f"{missing}: expected both ends of the range, found only one")
    for name, value in (("start_date", start), ("end_date", end)):
        if value is not None and value.tzinfo is None:
            problems.append(f"{name}: expected a time with a timezone, found {value.isoformat()}")
    naive = [d for d in spec.dates if d.tzinfo is None]
    if naive:
        problems.append(f"dates: expected times with a timezone, found {naive[0].isoformat()}")
    if start and end and start.tzinfo and end.tzinfo and end < start:
        problems.append(
            f"end_date: expected at or after start_date {start.isoformat()}, found "
            f"{end.isoformat()}"
        )
    unique = _unique(d for d in spec.dates if d.tzinfo is not None)
    if len(unique) > MAX_DATE_LIST:
        problems.append(f"dates: expected at most {MAX_DATE_LIST} dates, found {len(unique)}")
    if spec.parallelism < 1:
        problems.append(f"parallelism: expected 1 or more, found {spec.parallelism}")
    crons = _crons(spec, problems)
    if not _ID.match(spec.worker_group):
        problems.append(f"worker_group: expected a group name, found {spec.worker_group!r}")
    if spec.warning_group_id < 0:
        problems.append(f"warning_group_id: expected 0 or more, found {spec.warning_group_id}")
    problems.extend(f"params: {p}" for p in param_problems(spec.params))
    if not problems and start is not None and end is not None:
        count = len(_range(crons, start, end, MAX_DATES + 1))
        if count == 0:
            problems.append(
                f"dates: expected a fire time of {' or '.join(c.expression for c in crons)} "
                f"between {start.isoformat()} and {end.isoformat()}, found none"
            )
        elif count > MAX_DATES:
            problems.append(f"dates: expected at most {MAX_DATES} dates in the range, found more")
    return problems


def _unique(dates: Iterable[datetime]) -> list[datetime]:
    """The dates as UTC instants, each once, in the order first given."""
    return list(dict.fromkeys(d.astimezone(UTC) for d in dates))


def _range(crons: Sequence[Cron], start: datetime, end: datetime, limit: int) -> list[datetime]:
    times: set[datetime] = set()
    for cron in crons:
        times.update(
            t.astimezone(UTC) for t in cron.fire_times(start - _JUST_BEFORE, until=end, limit=limit)
        )
    return sorted(times)[:limit]


class InvalidBackfill(ValueError):
    """A backfill that cannot be; `problems` names each reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def backfill_dates(spec: BackfillSpec) -> tuple[datetime, ...]:
    """The dates `spec` runs, in UTC, in its order (`InvalidBackfill` when it has problems)."""
    problems = backfill_problems(spec)
    if problems:
        raise InvalidBackfill(problems)
    if spec.dates:
        dates = sorted(_unique(spec.dates))
    else:
        assert spec.start_date is not None and spec.end_date is not None
        dates = _range(_crons(spec, []), spec.start_date, spec.end_date, MAX_DATES)
    if spec.order is ExecutionOrder.DESC:
        dates.reverse()
    return tuple(dates)


def date_command_id(backfill_command_id: str, date: datetime) -> str:
    """The command id of a date's start: the same (request, date) names the same start."""
    return f"backfill/{backfill_command_id}@{date.astimezone(UTC).isoformat()}"


def date_instance_id(backfill_command_id: str, date: datetime) -> str:
    """The instance a backfill date starts: the same (request, date) gives the same id."""
    if date.tzinfo is None:
        raise ValueError("a backfill date is an instant: give it a timezone")
    return str(uuid.uuid5(TIDEFLOW_NS, date_command_id(backfill_command_id, date)))
