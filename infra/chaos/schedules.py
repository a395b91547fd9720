"""Schedules under chaos (`ChaosOptions.schedulers` > 0): schedules of the no-op workflow
firing every 2 s while schedulers are killed, stopped and paused; taken offline when the
faults stop; then what they fired is read back for the checker
(`schedule_invariants.check_schedule_fires`) and their instances join the started ones (so
they must end too)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from infra.chaos.schedule_invariants import ChaosSchedule
from infra.settings import Settings
from schemas.catalog import SCHEDULES
from schemas.serde import expect
from streams.core.schedules.messages import (
    CreateSchedule,
    ScheduleBroughtOnline,
    ScheduleEvent,
    ScheduleFired,
    ScheduleTakenOffline,
    TakeScheduleOffline,
)
from streams.core.schedules.spec import ScheduleSpec
from streams.kafka.partitioning import partition_for
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end

CRON = "*/2 * * * * ? *"
WEIGHTS: dict[tuple[str, str], float] = {
    ("scheduler", "SIGKILL"): 2.0,
    ("scheduler", "SIGTERM"): 0.5,
}
PAUSE_WEIGHTS: dict[tuple[str, str], float] = {("scheduler", "SIGSTOP"): 1.0}


class ChaosSchedules:
    def __init__(self, settings: Settings, workflow_code: str, count: int, seed: int) -> None:
        self._settings = settings
        self._workflow = workflow_code
        # spread over the partitions (round robin), so every scheduler owns some
        parts = settings.tideflow_partitions
        chosen: list[str] = []
        n = 0
        while len(chosen) < count and n < 10_000:
            sid = f"chaos-{seed}-s{n}"
            if partition_for(sid, parts) == len(chosen) % parts:
                chosen.append(sid)
            n += 1
        self.ids = chosen
        self.offline_sent: datetime | None = None

    def _send(self, commands: list[CreateSchedule] | list[TakeScheduleOffline]) -> None:
        producer = Producer(self._settings.kafka)
        for c in commands:
            producer.send(self._settings.topics.schedule_commands, c.schedule_id, c)
        producer.flush()

    def create(self) -> None:
        now = datetime.now(UTC)
        spec = ScheduleSpec(workflow_code=self._workflow, cron=CRON)
        self._send([
            CreateSchedule(command_id=f"create/{sid}", schedule_id=sid, spec=spec, online=True,
                           requested_by="chaos", at=now)
            for sid in self.ids
        ])  # fmt: skip

    def take_offline(self) -> None:
        self.offline_sent = datetime.now(UTC)
        self._send([
            TakeScheduleOffline(command_id=f"offline/{sid}", schedule_id=sid, at=self.offline_sent)
            for sid in self.ids
        ])  # fmt: skip

    def events(self) -> list[ScheduleEvent]:
        topic = self._settings.topics.schedules
        return [expect(m.value(), SCHEDULES) for m in read_to_end(self._settings.kafka, topic)]

    def wait_offline(self, timeout_s: float, say: Callable[[str], None]) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = {e.schedule_id for e in self.events() if isinstance(e, ScheduleTakenOffline)}
            if set(self.ids) <= done:
                return True
            time.sleep(1.0)
        say(f"schedules not all offline within {timeout_s:.0f}s")
        return False

    def read_back(self) -> tuple[list[ChaosSchedule], list[ScheduleFired]]:
        events = self.events()
        online = {e.schedule_id: e.at for e in events if isinstance(e, ScheduleBroughtOnline)}
        assert self.offline_sent is not None
        schedules = [
            ChaosSchedule(sid, CRON, "UTC", online[sid], self.offline_sent)
            for sid in self.ids
            if sid in online
        ]
        fires = [e for e in events if isinstance(e, ScheduleFired) and e.schedule_id in self.ids]
        return schedules, fires
