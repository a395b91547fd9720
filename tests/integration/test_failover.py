"""Master and worker failover on real processes, broker and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra import compose
from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from schemas.catalog import DISPATCH, EVENTS
from schemas.serde import expect
from streams.core.events import PartitionTakenOver, TaskFailedOver, TaskStarted, WorkerLost
from streams.core.worker_messages import KillTask
from streams.kafka.reader import read_to_end
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import (
    assert_read_model_matches_log,
    folded,
    instance_events,
    wait_finished,
    wait_projector_running,
    wait_until,
    workflow,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def quick(stack: Settings, tmp_path: Path) -> tuple[Settings, Fleet]:
    """A deployment that declares workers lost after 2 s and snapshots after every event."""
    settings = fresh_settings(
        stack,
        tideflow_heartbeat_interval_s=0.5,
        tideflow_worker_timeout_s=2.0,
        tideflow_snapshot_every_events=1,
    )
    prepare(settings)
    return settings, Fleet(settings, log_dir=tmp_path / "logs")


def partition_events(settings: Settings, kind: type) -> list[Any]:
    found = (expect(m.value(), EVENTS) for m in read_to_end(settings.kafka, settings.topics.events))
    return [e for e in found if isinstance(e, kind)]


def test_worker_killed_mid_task_is_failed_over_to_a_live_worker(
    quick: tuple[Settings, Fleet],
) -> None:
    settings, fleet = quick
    with fleet:
        fleet.start("master")
        fleet.start("projector")
        fleet.start("worker", name="worker-1", TIDEFLOW_WORKER_ID="worker-1")
        wait_projector_running(settings)
        service = compose.service(settings)
        service.register(workflow("slow", [{"code": "nap", "command": "sleep 3", "retries": 0}]))
        instance_id = service.start("slow")["instance_id"]
        wait_until(
            lambda: any(isinstance(e, TaskStarted) for e in instance_events(settings, instance_id)),
            what="the task to start on worker-1",
        )
        fleet.start("worker", name="worker-2", TIDEFLOW_WORKER_ID="worker-2")
        fleet.kill("worker-1")

        final = wait_finished(service, instance_id)

        assert final["state"] == "SUCCESS"
        events = instance_events(settings, instance_id)
        over = [e for e in events if isinstance(e, TaskFailedOver)]
        assert [(e.task_code, e.attempt, e.worker_id) for e in over] == [("nap", 1, "worker-1")]
        runs = [(e.attempt, e.worker_id) for e in events if isinstance(e, TaskStarted)]
        assert runs == [(1, "worker-1"), (2, "worker-2")]
        assert [e.worker_id for e in partition_events(settings, WorkerLost)] == ["worker-1"]
        kills = [  # the kill record: were worker-1 only cut off, it kills attempt 1 once back
            (r.task_code, r.attempt, r.worker_id)
            for m in read_to_end(settings.kafka, settings.topics.dispatch)
            if isinstance(r := expect(m.value(), DISPATCH), KillTask)
        ]
        assert kills == [("nap", 1, "worker-1")]
        attempts = {t["attempt"]: t["state"] for t in service.instance(instance_id)["attempts"]}
        assert attempts == {1: "NEED_FAULT_TOLERANCE", 2: "SUCCESS"}
        assert_read_model_matches_log(service, folded(settings, instance_id))


def test_new_master_takes_over_from_a_snapshot_with_a_higher_epoch(
    quick: tuple[Settings, Fleet],
) -> None:
    settings, fleet = quick
    with fleet:
        fleet.start("master", name="master-1")
        fleet.start("worker")
        fleet.start("projector")
        wait_projector_running(settings)
        service = compose.service(settings)
        tasks = [{"code": "a", "type": "noop"}, {"code": "b", "type": "noop", "depends": ["a"]}]
        service.register(workflow("short", tasks))
        first = service.start("short")["instance_id"]
        assert wait_finished(service, first)["state"] == "SUCCESS"
        fleet.stop("master-1")  # graceful: leaves the group, snapshots already written
        fleet.start("master", name="master-2")
        second = service.start("short")["instance_id"]

        assert wait_finished(service, second)["state"] == "SUCCESS"
        takeovers = partition_events(settings, PartitionTakenOver)
        by_partition: dict[int, list[PartitionTakenOver]] = {}
        for t in takeovers:
            by_partition.setdefault(t.partition, []).append(t)
        assert set(by_partition) == set(range(settings.tideflow_partitions))  # each moved
        for p, seq in by_partition.items():
            assert [t.epoch for t in seq] == [1, 2], p
            assert seq[1].previous_owner == seq[0].owner != seq[1].owner
        log = (Path(fleet.log_dir or ".") / "master-2.log").read_text()
        assert "snapshot used" in log
