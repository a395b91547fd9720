"""The short, seeded chaos run: mixed workflows and bad input on 2 masters and 2 workers while
masters, workers and the projector are killed (SIGKILL) and stopped (SIGTERM) at random
moments and PostgreSQL is restarted under the projector; then every invariant is checked
from the event log and the read models (infra/chaos/check.py).

It brings its own local stack (a private PostgreSQL it may restart; set DATABASE_URL to use
another server, and the PostgreSQL restarts are skipped)."""

from __future__ import annotations

import io
import os
import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from infra.chaos import ChaosOptions, run
from infra.chaos.check import EventLog, LogRecord, Run, check_attempts, check_runs
from infra.chaos.load import JOURNAL, read_journal
from infra.chaos.report import print_report
from infra.chaos.runner import read_log
from infra.processes import Fleet
from infra.settings import Settings
from streams.core.commands import StartWorkflow
from streams.core.definition import parse_workflow
from streams.core.events import TaskDispatched, WorkflowSucceeded
from streams.kafka.producer import Producer
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.integration

SEED = 20261122


@pytest.mark.timeout(240)
def test_short_seeded_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=False)
    options = ChaosOptions(
        duration_s=35.0,
        seed=SEED,
        masters=2,
        workers=2,
        start_rate=1.0,
        bad_input_rate=0.5,
        fault_interval_s=3.0,
        settle_timeout_s=40.0,
        workdir=tmp_path / "chaos",
    )

    outcome = run(options, console)
    print_report(outcome, console)
    report = out.getvalue()
    print(report)  # shown by pytest on failure

    assert outcome.result is not None, report
    assert len(outcome.started) > 10, report
    assert outcome.faults, report
    assert {f.role for f in outcome.faults} >= {"master", "worker"}, report
    assert outcome.result.bad_inputs, report
    assert outcome.violations == [], "\n".join(v.render() for v in outcome.violations)


def _events_of(settings: Settings, instance_id: str) -> list[LogRecord]:
    return [
        r
        for r in read_log(settings)
        if r.event is not None and getattr(r.event, "instance_id", None) == instance_id
    ]


def test_an_attempt_acked_before_a_takeover_does_not_run_again_on_a_restarted_worker(
    deployment: Settings, fleet: Fleet, tmp_path: Path
) -> None:
    """The interleaving the chaos run found (seed 7, 120 s): a master dispatches an attempt
    and dies; the worker runs it and acks it, then restarts; the new owner rebuilds the
    partition from the events (the acks still wait, unread, on the commands topic), sees the
    attempt unacknowledged and re-sends it, and the restarted worker, which has no memory of
    it, runs it a second time. Nothing in the log explains the second run: the journal of
    the shell tasks shows it."""
    journal = tmp_path / "runs.log"
    fleet.start("master", "master-1")
    fleet.start("worker", "worker-1", TIDEFLOW_WORKER_ID="worker-1")
    once = parse_workflow(
        {"code": "once", "tasks": [{"code": "only", "command": JOURNAL + "sleep 0.2"}]}
    )
    iid = f"ran-twice-{uuid.uuid4().hex[:8]}"
    start = StartWorkflow(
        command_id=f"start/{iid}",
        instance_id=iid,
        workflow=once,
        params={"CHAOS_JOURNAL": str(journal)},
        at=datetime.now(UTC),
    )
    wait_until(lambda: read_log(deployment), what="the first partition takeover")
    time.sleep(2.0)  # the master has seen worker-1's heartbeats
    worker = fleet.procs["worker-1"]
    os.kill(worker.pid, signal.SIGSTOP)  # the dispatch waits unread until the master is gone
    producer = Producer(deployment.kafka)
    producer.send(deployment.topics.commands, iid, start)
    producer.flush()
    wait_until(
        lambda: any(isinstance(r.event, TaskDispatched) for r in _events_of(deployment, iid)),
        what="the dispatch",
    )
    fleet.kill("master-1")
    os.kill(worker.pid, signal.SIGCONT)
    wait_until(lambda: read_journal(journal), what="the attempt to run")
    time.sleep(1.0)  # its started and finished acks are on the commands topic
    fleet.stop("worker-1")  # graceful: every ack delivered
    fleet.start("worker", "worker-1", TIDEFLOW_WORKER_ID="worker-1")
    fleet.start("master", "master-2")

    wait_until(
        lambda: any(isinstance(r.event, WorkflowSucceeded) for r in _events_of(deployment, iid)),
        timeout_s=60,
        what="the instance to succeed",
    )
    time.sleep(2.0)  # a second run, if any, has written its journal line by now
    log = EventLog(_events_of(deployment, iid))
    runs = [Run(i, c, n, w, pid) for i, c, n, w, pid in read_journal(journal)]
    violations = check_runs(log, runs) + check_attempts(log)
    assert violations == [], "\n".join(v.render() for v in violations)
