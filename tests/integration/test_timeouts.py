"""Timeouts through a real master and worker: a dispatch the worker does not acknowledge in
time is failed over, and its kill record makes the worker, once it is back, kill that
attempt; a task past its `timeout` is killed by the worker and ends as FAILURE."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from infra import compose
from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from schemas.catalog import DISPATCH
from schemas.serde import expect
from streams.core.enums import Outcome
from streams.core.events import (
    TaskDispatched,
    TaskFailed,
    TaskFailedOver,
    TaskSucceeded,
    WorkflowFailed,
    WorkflowSucceeded,
)
from streams.core.worker_messages import KillTask, TaskAssignment
from streams.kafka.reader import read_to_end
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import (
    assert_read_model_matches_log,
    ended_with,
    finished_acks,
    folded,
    instance_events,
    send_start,
    wait_finished,
    wait_until,
)

pytestmark = pytest.mark.integration

ACK_TIMEOUT_S = 2.0


def dispatch_records(settings: Settings, instance_id: str) -> list[TaskAssignment | KillTask]:
    found = (
        expect(m.value(), DISPATCH) for m in read_to_end(settings.kafka, settings.topics.dispatch)
    )
    return [r for r in found if r.instance_id == instance_id]


def test_an_unacknowledged_dispatch_is_failed_over_and_killed_by_its_worker_once_back(
    stack: Settings, tmp_path: Path
) -> None:
    settings = fresh_settings(
        stack,
        tideflow_dispatch_ack_timeout_s=ACK_TIMEOUT_S,
        tideflow_worker_timeout_s=60.0,  # the worker stays live: only the ack deadline acts
        tideflow_heartbeat_interval_s=0.5,
    )
    prepare(settings)
    with Fleet(settings, log_dir=tmp_path / "logs") as fleet:
        fleet.start("master")
        worker = fleet.start("worker", TIDEFLOW_WORKER_ID="cut", TIDEFLOW_WORKER_SLOTS="1")
        canary = send_start(settings, "canary", [{"code": "only", "type": "noop"}])
        # the first wait includes the master joining and the worker's first heartbeat
        wait_until(
            lambda: ended_with(settings, canary, WorkflowSucceeded), timeout_s=90, what="the canary"
        )
        os.kill(worker.pid, signal.SIGSTOP)  # cut off: it reads and acks nothing
        try:
            # Attempt 1 would hold the only slot for 30 s; a later one ends at once.
            quick_unless_first = '[ "$TIDEFLOW_ATTEMPT" != 1 ] || sleep 30'
            iid = send_start(settings, "cut-off", [{"code": "t", "command": quick_unless_first}])
            wait_until(
                lambda: any(isinstance(e, TaskFailedOver) for e in instance_events(settings, iid)),
                timeout_s=60,
                what="the dispatch to be failed over",
            )
        finally:
            os.kill(worker.pid, signal.SIGCONT)  # back: it finds the assignment, then the kill
        wait_until(
            lambda: ended_with(settings, iid, WorkflowSucceeded), timeout_s=60, what="success"
        )

        events = instance_events(settings, iid)
        over = [e for e in events if isinstance(e, TaskFailedOver)]
        assert (over[0].task_code, over[0].attempt, over[0].worker_id) == ("t", 1, "cut")
        assert f"not acknowledged within {ACK_TIMEOUT_S:g}s" in over[0].reason
        dispatched = [e.attempt for e in events if isinstance(e, TaskDispatched)]
        assert dispatched == list(range(1, len(over) + 2))  # a new attempt per failover
        assert [e.attempt for e in events if isinstance(e, TaskSucceeded)] == [dispatched[-1]]
        records = [(type(r), r.attempt) for r in dispatch_records(settings, iid)]
        assert records.index((KillTask, 1)) > records.index((TaskAssignment, 1))
        first = [a for a in finished_acks(settings, iid) if a.attempt == 1]
        assert [(a.outcome, a.worker_id) for a in first] == [(Outcome.KILLED, "cut")]


def test_a_task_past_its_timeout_is_killed_and_fails(deployment: Settings, fleet: Fleet) -> None:
    for role in ("master", "worker", "projector"):
        fleet.start(role)
    service = compose.service(deployment)
    nap = {"code": "nap", "command": "sleep 30", "timeout": "1s", "retries": 0}
    iid = send_start(deployment, "slow", [nap])

    final = wait_finished(service, iid, timeout_s=90)

    assert final["state"] == "FAILURE"
    failed = [e for e in instance_events(deployment, iid) if isinstance(e, TaskFailed)]
    assert [(e.task_code, e.attempt, e.reason, e.exit_code) for e in failed] == [
        ("nap", 1, "timed out", 143)  # SIGTERM from the worker, not `sleep 30` ending
    ]
    assert ended_with(deployment, iid, WorkflowFailed)
    assert [(a.outcome, a.exit_code) for a in finished_acks(deployment, iid)] == [
        (Outcome.TIMEOUT, 143)
    ]
    assert_read_model_matches_log(service, folded(deployment, iid))
