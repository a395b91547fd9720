"""Schedules on the real broker: a cron every 2 s fires; each fire time makes exactly one
instance, also when the scheduler is SIGKILLed and restarted, and when one is SIGSTOPped
longer than the session timeout (its partitions move) and then SIGCONTed (a zombie)."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from schemas.catalog import EVENTS, SCHEDULES
from schemas.serde import expect
from streams.core.definition import WorkflowDef
from streams.core.events import WorkflowDefinitionRegistered, WorkflowStarted
from streams.core.ids import scheduled_instance_id
from streams.core.schedules.messages import CreateSchedule, ScheduleFired
from streams.core.schedules.spec import ScheduleSpec
from streams.kafka.partitioning import partition_for
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import wait_until, workflow

pytestmark = pytest.mark.integration

EVERY_2S = "*/2 * * * * ? *"


@pytest.fixture
def deployment(stack: Settings) -> Settings:
    settings = fresh_settings(stack)
    prepare(settings)
    return settings


def register(settings: Settings, wf: WorkflowDef) -> None:
    """A registration straight on the definitions topic (no API, no projector needed)."""
    from dataclasses import replace

    producer = Producer(settings.kafka)
    event = WorkflowDefinitionRegistered(
        workflow=replace(wf, version=1), content_hash=wf.content_hash(), at=datetime.now(UTC)
    )
    producer.send(settings.topics.definitions, f"{wf.code}@1@{wf.content_hash()}", event)
    producer.flush()


def create_online(settings: Settings, schedule_ids: list[str], cron: str = EVERY_2S) -> None:
    producer = Producer(settings.kafka)
    for sid in schedule_ids:
        command = CreateSchedule(
            command_id=f"create/{sid}",
            schedule_id=sid,
            spec=ScheduleSpec(workflow_code="tick", cron=cron),
            online=True,
            at=datetime.now(UTC),
        )
        producer.send(settings.topics.schedule_commands, sid, command)
    producer.flush()


def fires(settings: Settings) -> list[ScheduleFired]:
    found = (
        expect(m.value(), SCHEDULES) for m in read_to_end(settings.kafka, settings.topics.schedules)
    )
    return [e for e in found if isinstance(e, ScheduleFired)]


def fire_times(settings: Settings) -> set[tuple[str, datetime]]:
    return {(f.schedule_id, f.fire_time) for f in fires(settings)}


def started(settings: Settings) -> list[WorkflowStarted]:
    found = (expect(m.value(), EVENTS) for m in read_to_end(settings.kafka, settings.topics.events))
    return [e for e in found if isinstance(e, WorkflowStarted)]


def assert_each_fire_time_one_instance(
    settings: Settings, schedule_ids: list[str], until: datetime
) -> dict[str, list[datetime]]:
    """Every 2-second time from a schedule's first fire up to `until` was fired and made
    exactly one instance; no other instance was started. Returns the fire times."""
    recorded = fires(settings)
    starts = started(settings)
    counts: dict[str, int] = {}
    for s in starts:
        counts[s.instance_id] = counts.get(s.instance_id, 0) + 1
    assert all(n == 1 for n in counts.values()), f"an instance started twice: {counts}"
    expected_ids: set[str] = set()
    out: dict[str, list[datetime]] = {}
    for sid in schedule_ids:
        times = sorted({f.fire_time for f in recorded if f.schedule_id == sid})
        assert times, f"schedule {sid} never fired"
        t, expected = times[0], []
        while t <= until:
            expected.append(t)
            t += timedelta(seconds=2)
        assert [x for x in times if x <= until] == expected, f"{sid}: a fire time was missed"
        expected_ids |= {scheduled_instance_id(sid, t) for t in times}
        out[sid] = times
    assert set(counts) == expected_ids  # one instance per fire time, and nothing else
    return out


def test_a_two_second_cron_fires_and_each_fire_time_makes_one_instance(
    deployment: Settings, tmp_path: Path
) -> None:
    settings = deployment
    register(settings, workflow("tick", [{"code": "a", "type": "noop"}]))
    with Fleet(settings, log_dir=tmp_path / "logs") as fleet:
        fleet.start("master")
        fleet.start("scheduler")
        create_online(settings, ["every-2s"])
        wait_until(lambda: len(fires(settings)) >= 3, 30, "three fires")
        fleet.stop("scheduler")
    until = max(f.fire_time for f in fires(settings))
    wait_until(lambda: len(started(settings)) >= len(fire_times(settings)), 20, "the starts")
    times = assert_each_fire_time_one_instance(settings, ["every-2s"], until)["every-2s"]
    lateness = sorted((f.at - f.fire_time).total_seconds() for f in fires(settings))
    assert len(times) >= 3 and max(lateness) < 2.0, lateness
    print(f"fires {len(lateness)}, lateness {lateness}")


def _one_per_partition(partitions: int) -> list[str]:
    ids: dict[int, str] = {}
    n = 0
    while len(ids) < partitions:
        sid = f"s{n}"
        ids.setdefault(partition_for(sid, partitions), sid)
        n += 1
    return sorted(ids.values())


def test_no_fire_time_is_missed_or_doubled_across_sigkill_and_sigstop(
    stack: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings(stack)
    prepare(settings)
    register(settings, workflow("tick", [{"code": "a", "type": "noop"}]))
    ids = _one_per_partition(settings.tideflow_partitions)
    with Fleet(settings, log_dir=tmp_path / "logs") as fleet:
        fleet.start("master")
        fleet.start("scheduler", name="scheduler-a")
        create_online(settings, ids)
        wait_until(lambda: {f.schedule_id for f in fires(settings)} == set(ids), 30, "fires")
        # SIGKILL: no goodbye; restarted at once, it catches up what fired meanwhile.
        fleet.kill("scheduler-a")
        time.sleep(3)
        fleet.start("scheduler", name="scheduler-a")
        fleet.start("scheduler", name="scheduler-b")
        time.sleep(8)  # both in the group, partitions shared
        # SIGSTOP one longer than the session timeout: the other takes its partitions; then
        # SIGCONT: it wakes as a zombie holding stale partitions for a moment.
        paused = fleet.procs["scheduler-b"]
        paused.send_signal(signal.SIGSTOP)
        time.sleep(settings.tideflow_session_timeout_ms / 1000 + 4)
        paused.send_signal(signal.SIGCONT)
        time.sleep(6)
        until = datetime.now(UTC) - timedelta(seconds=3)
        fleet.stop("scheduler-b")
        fleet.stop("scheduler-a")
    wait_until(
        lambda: (
            len(started(settings)) >= len({(f.schedule_id, f.fire_time) for f in fires(settings)})
        ),
        30,
        "starts",
    )
    times = assert_each_fire_time_one_instance(settings, ids, until)
    assert all(len(t) >= 10 for t in times.values()), {k: len(v) for k, v in times.items()}
    recorded = fires(settings)
    lateness = sorted((f.at - f.fire_time).total_seconds() for f in recorded)
    fired_twice = len(recorded) - len({(f.schedule_id, f.fire_time) for f in recorded})
    print(  # the figures the README quotes
        f"fire times {sum(map(len, times.values()))}, fired twice {fired_twice}, lateness "
        f"p50 {lateness[len(lateness) // 2]:.3f} s, max {lateness[-1]:.3f} s"
    )
