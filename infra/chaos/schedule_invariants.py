"""The chaos suite's schedule invariant (pure, over data read after the run): every fire time
of a chaos schedule inside its window fired, and every fire time made exactly one instance.

``schedule-fires``: for each schedule, every cron time from the moment it was brought online
up to the moment its offline was sent (less a margin for that command's own trip) is among
the fire times recorded (`ScheduleFired`), whatever the scheduler faults; and for every fire
time recorded, the instance id derived from (schedule, fire time) has exactly one unfenced
`WorkflowStarted` in the events log, and no other instance was started by a schedule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from infra.chaos.records import MAX_EVIDENCE, EventLog, Violation
from streams.core.cron import parse_cron
from streams.core.events import WorkflowStarted
from streams.core.ids import scheduled_instance_id
from streams.core.schedules.messages import ScheduleFired


@dataclass(frozen=True, slots=True)
class ChaosSchedule:
    schedule_id: str
    cron: str
    timezone: str
    online_at: datetime  # when its online was decided (ScheduleBroughtOnline.at)
    offline_sent: datetime  # when the run asked for it to go offline


WINDOW_MARGIN = timedelta(seconds=1)


def check_schedule_fires(
    log: EventLog, schedules: Sequence[ChaosSchedule], fires: Sequence[ScheduleFired]
) -> list[Violation]:
    out: list[Violation] = []
    started = Counter(r.event.instance_id for r in log.events_of(WorkflowStarted))
    by_schedule: Mapping[str, set[datetime]] = {
        s.schedule_id: {f.fire_time for f in fires if f.schedule_id == s.schedule_id}
        for s in schedules
    }
    for s in schedules:
        recorded = by_schedule[s.schedule_id]
        cron = parse_cron(s.cron, s.timezone)
        expected = list(cron.fire_times(s.online_at, until=s.offline_sent - WINDOW_MARGIN))
        missed = [t for t in expected if t not in recorded]
        if missed:
            out.append(
                Violation(
                    "schedule-fires",
                    s.schedule_id,
                    f"{len(missed)} of {len(expected)} fire times in the window never fired",
                    tuple(t.isoformat() for t in missed[:MAX_EVIDENCE]),
                )
            )
        wrong = {
            t: started.get(scheduled_instance_id(s.schedule_id, t), 0)
            for t in sorted(recorded)
            if started.get(scheduled_instance_id(s.schedule_id, t), 0) != 1
        }
        if wrong:
            out.append(
                Violation(
                    "schedule-fires",
                    s.schedule_id,
                    f"{len(wrong)} fire times did not make exactly one instance",
                    tuple(f"{t.isoformat()}: {n} instances" for t, n in list(wrong.items())[:12]),
                )
            )
    return out


def fired_instances(fires: Sequence[ScheduleFired]) -> list[str]:
    """The instances the fires started, once each, in fire order."""
    return list(dict.fromkeys(f.instance_id for f in sorted(fires, key=lambda f: f.fire_time)))
