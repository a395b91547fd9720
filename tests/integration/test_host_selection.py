"""Host selection through a real master: a worker group configured for round robin (the
rest idle-first, from the environment through settings) spreads one decision's dispatches
evenly over its two workers."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from schemas.catalog import HEARTBEATS
from schemas.serde import expect
from streams.core.events import TaskDispatched, WorkflowSucceeded
from streams.kafka.reader import read_to_end
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import ended_with, instance_events, send_start, wait_until

pytestmark = pytest.mark.integration


def heartbeating(settings: Settings) -> set[str]:
    return {
        expect(m.value(), HEARTBEATS).worker_id
        for m in read_to_end(settings.kafka, settings.topics.heartbeats)
    }


def test_a_round_robin_group_spreads_dispatches_over_its_workers(
    stack: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings(
        stack, tideflow_host_selector_groups="rr=round_robin", tideflow_heartbeat_interval_s=0.5
    )
    prepare(settings)
    with Fleet(settings, log_dir=tmp_path / "logs") as fleet:
        fleet.start("master")
        for wid in ("wa", "wb"):
            fleet.start("worker", wid, TIDEFLOW_WORKER_ID=wid, TIDEFLOW_WORKER_GROUP="rr",
                        TIDEFLOW_WORKER_SLOTS="8")  # fmt: skip
        wait_until(lambda: heartbeating(settings) >= {"wa", "wb"}, what="both workers")
        time.sleep(1.0)  # the master reads heartbeats every 100 ms
        tasks = [{"code": f"t{i}", "type": "noop", "worker_group": "rr"} for i in range(6)]

        iid = send_start(settings, "spread", tasks)

        wait_until(lambda: ended_with(settings, iid, WorkflowSucceeded), what="success")
        placed = Counter(
            e.worker_id for e in instance_events(settings, iid) if isinstance(e, TaskDispatched)
        )
        assert placed == {"wa": 3, "wb": 3}
