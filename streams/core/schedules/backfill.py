"""A backfill request (DolphinScheduler's complement data, §3.12) and its dates (pure).

A backfill runs a registered workflow once per date: either a range (start, end, both
inclusive) expanded by the crons of the workflow's online schedules (daily at 00:00 when it
has none), or an explicit list of dates (de-duplicated as instants, at most 100). Dates run
ascending or descending (DolphinScheduler's default: descending), SERIAL (the next date
starts only when the previous instance ended SUCCESS; a failure ends the chain) or PARALLEL
(up to `parallelism` instances at once, the next when one ends), with the run settings a
schedule's fire takes. `backfill_problems` names every problem at once.

PARALLEL differs from DolphinScheduler on purpose: it deals the dates round-robin into N
lists, each run serially (a slow or failed date holds up its own list only); here any free
slot takes the next date in order, so N instances run while dates are left, and a failure
stops no other date.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum, StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
MIN_YEAR: Final = 1900
MAX_YEAR: Final = 9000


def _in_years(d: datetime) -> bool:
    return MIN_YEAR <= d.year <= MAX_YEAR


class RunMode(StrEnum):
    """DolphinScheduler's RUN_MODE_SERIAL (0, default) / RUN_MODE_PARALLEL (1)."""

    SERIAL = "SERIAL"
    PARALLEL = "PARALLEL"


class ExecutionOrder(StrEnum):
    """DolphinScheduler's DESC_ORDER (0, default) / ASC_ORDER (1)."""

    DESC = "DESC"
    ASC = "ASC"


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillCron:
    """The cron of one online schedule of the workflow, in that schedule's timezone."""

    cron: str
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True, kw_only=True)
class BackfillSpec:
    """What a user asks for: a range or a list of dates, how to run them, the run settings."""

    workflow_code: str
    start_date: datetime | None = None  # a range: both given, both inclusive
    end_date: datetime | None = None
    dates: tuple[datetime, ...] = ()  # or a list (at most 100)
    crons: tuple[BackfillCron, ...] = ()  # the online schedules' (none: daily at 00:00)
    timezone: str = "UTC"  # the daily default's timezone
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
    for c in spec.crons or (BackfillCron(cron=DAILY, timezone=spec.timezone),):
        try:
            out.append(parse_cron(c.cron, c.timezone))
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
    far = [d for d in (start, end, *spec.dates) if d is not None and not _in_years(d)]
    if far:
        problems.append(
            f"dates: expected years {MIN_YEAR} to {MAX_YEAR}, found {far[0].isoformat()}"
        )
        return problems  # nothing below can compute with it
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


_ENUMS: Final[dict[str, type[Enum]]] = {
    "order": ExecutionOrder,
    "run_mode": RunMode,
    "failure_strategy": FailureStrategy,
    "workflow_priority": Priority,
    "warning_type": WarningType,
}
_FIELDS: Final = (
    "workflow_code",
    "start_date",
    "end_date",
    "dates",
    "crons",
    "timezone",
    "order",
    "run_mode",
    "parallelism",
    "failure_strategy",
    "workflow_priority",
    "worker_group",
    "warning_type",
    "warning_group_id",
    "params",
)


def parse_backfill(raw: Mapping[str, Any]) -> BackfillSpec:
    """A checked `BackfillSpec` from plain values (JSON, CLI options): enums by name in any
    case, dates as ISO 8601 (without an offset: in `timezone`, UTC by default), crons as
    `{"cron", "timezone"}`. `InvalidBackfill` names every problem, `backfill_problems`' too."""
    problems = [
        f"{k}: not a backfill field (expected one of {', '.join(_FIELDS)})"
        for k in raw
        if k not in _FIELDS
    ]
    values: dict[str, Any] = {}
    code = raw.get("workflow_code")
    if not isinstance(code, str) or not code.strip():
        problems.append(f"workflow_code: expected a non-empty string, found {code!r}")
    else:
        values["workflow_code"] = code.strip()
    tz = raw.get("timezone") or "UTC"
    zone: tzinfo = UTC
    try:
        zone = ZoneInfo(str(tz))
        values["timezone"] = str(tz)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: expected an IANA name like 'Asia/Shanghai', found {tz!r}")
    for name in ("start_date", "end_date"):
        if raw.get(name) not in (None, ""):
            values[name] = _date(raw[name], zone, name, problems)
    given = raw.get("dates") or []
    if not isinstance(given, list | tuple):
        problems.append(f"dates: expected a list of ISO 8601 dates, found {given!r}")
        given = []
    values["dates"] = tuple(
        d for i, v in enumerate(given) if (d := _date(v, zone, f"dates[{i}]", problems))
    )
    crons = raw.get("crons") or []
    parsed: list[BackfillCron] = []
    for i, c in enumerate(crons if isinstance(crons, list | tuple) else [crons]):
        if isinstance(c, BackfillCron):
            parsed.append(c)
        elif isinstance(c, Mapping) and isinstance(c.get("cron"), str):
            parsed.append(BackfillCron(cron=c["cron"], timezone=str(c.get("timezone") or "UTC")))
        else:
            problems.append(f"crons[{i}]: expected {{'cron', 'timezone'}}, found {c!r}")
    values["crons"] = tuple(parsed)
    for name, kind in _ENUMS.items():
        value = raw.get(name)
        if value is None:
            continue
        key = str(value.name if isinstance(value, Enum) else value).upper()
        if key == "ASC_ORDER" or key == "DESC_ORDER":  # DolphinScheduler's names
            key = key.removesuffix("_ORDER")
        if key in kind.__members__:
            values[name] = kind[key]
        else:
            choices = ", ".join(kind.__members__)
            problems.append(f"{name}: expected one of {choices}, found {value!r}")
    for name, default in (("parallelism", 1), ("warning_group_id", 0), ("worker_group", "")):
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, type(default)) or isinstance(value, bool):
            problems.append(f"{name}: expected a {type(default).__name__}, found {value!r}")
        else:
            values[name] = value
    params = raw.get("params") or {}
    if not isinstance(params, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        problems.append(f"params: expected names to string values, found {params!r}")
    else:
        values["params"] = dict(params)
    if "workflow_code" not in values:
        values["workflow_code"] = "?"
    spec = BackfillSpec(**{k: v for k, v in values.items() if v is not None})
    named = {p.split(":")[0] for p in problems}
    problems += [p for p in backfill_problems(spec) if p.split(":")[0] not in named]
    if problems:
        raise InvalidBackfill(problems)
    return spec


def _date(value: object, zone: tzinfo, where: str, problems: list[str]) -> datetime | None:
    if isinstance(value, datetime):
        at = value
    else:
        try:
            at = datetime.fromisoformat(str(value))
        except ValueError:
            problems.append(
                f"{where}: expected an ISO 8601 date like 2026-11-01 or "
                f"2026-11-01T02:00, found {value!r}"
            )
            return None
    return at if at.tzinfo is not None else at.replace(tzinfo=zone)


def backfill_to_dict(spec: BackfillSpec) -> dict[str, Any]:
    """The plain form `parse_backfill` reads back (enums by name, ISO times)."""
    out: dict[str, Any] = {}
    for f in fields(BackfillSpec):
        value = getattr(spec, f.name)
        if isinstance(value, Enum):
            value = value.name
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif f.name == "dates":
            value = [d.isoformat() for d in value]
        elif f.name == "crons":
            value = [{"cron": c.cron, "timezone": c.timezone} for c in value]
        elif isinstance(value, dict):
            value = dict(value)
        out[f.name] = value
    return out
