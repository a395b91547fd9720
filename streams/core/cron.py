"""Cron expressions and their fire times (pure): the clock is an argument, never read.

Two forms are accepted, told apart by their field count:

* Quartz, as DolphinScheduler stores it: 6 or 7 fields, `sec min hour day-of-month month
  day-of-week [year]`, e.g. `0 0 2 * * ? *`. Day-of-week counts 1-7 from Sunday (Quartz's
  numbering) and one of day-of-month / day-of-week must be `?` ("no value"), as Quartz
  requires.
* Unix: 5 fields, `min hour day-of-month month day-of-week` (0-6 from Sunday, 7 is Sunday
  too); a match on either day field fires, as cron does.

croniter computes the times; this module translates Quartz into croniter's 7-field form
(seconds first) and states the rules croniter leaves open.

Daylight saving (the rule, written down because cron implementations differ): fire times
follow the wall clock of the schedule's timezone, and each wall-clock time fires at most
once.
* A time that does not exist (spring forward: 02:30 on a day that jumps from 02:00 to 03:00)
  fires at the first valid instant after the gap (03:00), as Vixie cron runs the jobs of a
  skipped hour right after it.
* A time that exists twice (fall back: 02:30 comes once in summer time, then again in winter
  time) fires once, at its first occurrence. An hourly schedule therefore skips the second
  02:00 of that night; a daily one never runs twice on one date.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

MAX_FIRES = 10_000  # fire times one call may compute (a preview, a catch-up window)
# A Quartz day-of-week number (1 = Sunday) outside a step (`/2`) or an nth (`#3`).
_QUARTZ_DOW_NUMBER = re.compile(r"(?<![/#\d])([1-7])(?!\d)")


class InvalidCron(ValueError):
    """A cron expression or timezone that cannot make fire times; `problems` names each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Cron:
    """A checked cron expression in a timezone."""

    expression: str  # as the user wrote it
    timezone: str  # an IANA name, e.g. "Asia/Shanghai"
    _croniter_form: str  # 7 fields, seconds first, Unix day-of-week numbers

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def fire_times(
        self, after: datetime, *, until: datetime | None = None, limit: int = MAX_FIRES
    ) -> Iterator[datetime]:
        """Fire times strictly after `after` (aware), in order, in the schedule's timezone,
        up to `until` (inclusive) and at most `limit` of them. Each wall-clock time fires
        at most once (see the module docstring for daylight saving)."""
        if after.tzinfo is None or (until is not None and until.tzinfo is None):
            raise ValueError("fire times are computed from aware datetimes only")
        it = croniter(self._croniter_form, after.astimezone(self.zone), second_at_beginning=True)
        last_wall: datetime | None = None
        produced = 0
        while produced < min(limit, MAX_FIRES):
            try:
                at: datetime = it.get_next(datetime)
            except CroniterError:  # no time left that matches (e.g. a year in the past)
                return
            if until is not None and at > until:
                return
            wall = at.replace(tzinfo=None)
            if last_wall is not None and wall <= last_wall:
                continue  # the repeated hour of a fall-back night: fired already
            last_wall = wall
            produced += 1
            yield at


def parse_cron(expression: str, timezone: str = "UTC") -> Cron:
    """The checked cron; `InvalidCron` naming every problem (form, fields, timezone)."""
    problems: list[str] = []
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: expected an IANA name like 'Asia/Shanghai', found {timezone!r}")
    fields = expression.split()
    form: str | None = None
    if len(fields) == 5:
        form = " ".join(["0", *fields, "*"])
    elif len(fields) in (6, 7):
        form = _from_quartz(fields, problems)
    else:
        problems.append(
            "cron: expected 5 fields (Unix: min hour dom month dow) or 6-7 (Quartz: sec min "
            f"hour dom month dow [year]), found {len(fields)} in {expression!r}"
        )
    if form is not None and not problems:
        try:
            croniter(form, datetime(2000, 1, 1, tzinfo=UTC), second_at_beginning=True)
        except CroniterError as exc:  # its message quotes its own form: keep the reason only
            reason = re.sub(r"\[[^\]]*\]\s*", "", str(exc)) or "is not acceptable"
            problems.append(f"cron: {expression!r} {reason}")
    if problems:
        raise InvalidCron(problems)
    assert form is not None
    return Cron(expression, timezone, form)


def _from_quartz(fields: list[str], problems: list[str]) -> str | None:
    sec, minute, hour, dom, month, dow, *year = fields
    if (dom == "?") == (dow == "?"):
        problems.append(
            "cron: Quartz needs '?' in exactly one of day-of-month and day-of-week, "
            f"found {dom!r} and {dow!r}"
        )
        return None
    dom = "*" if dom == "?" else dom
    if dow == "?":
        dow = "*"
    else:  # Quartz numbers days 1-7 from Sunday, croniter 0-6; "6L" (last Friday) is "L5"
        dow = _QUARTZ_DOW_NUMBER.sub(lambda m: str(int(m[1]) - 1), dow)
        dow = re.sub(r"(\d)L", r"L\1", dow)
    return " ".join([sec, minute, hour, dom, month, dow, *(year or ["*"])])
