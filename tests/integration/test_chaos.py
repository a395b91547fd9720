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
from pathlib import Path

import pytest
from rich.console import Console

from infra.chaos import ChaosOptions, run
from infra.chaos.evidence import read_log
from infra.chaos.faults import DEFAULT_WEIGHTS
from infra.chaos.load import JOURNAL, read_journal
from infra.chaos.log_invariants import check_attempts, check_runs
from infra.chaos.records import EventLog, LogRecord, Run
from infra.chaos.report import print_report
from infra.processes import Fleet
from infra.settings import Settings
from streams.core.events import TaskDispatched, WorkflowSucceeded
from tests.integration.helpers import finished_acks, send_start, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.serial]

# Chosen so that the plan holds every fault kind (each role by SIGKILL and SIGTERM, and a
# PostgreSQL restart, or a projector one in its place without a private cluster), each
# role's first fault well inside the 35 s: plan_faults is pure, the test checks it.
SEED = 45


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
    pg_skipped = any("PostgreSQL restarts" in n for n in outcome.notes)
    kinds = {k for k in DEFAULT_WEIGHTS if not (pg_skipped and k[0] == "postgres")}
    assert {(f.role, f.signal) for f in outcome.planned} == kinds, report
    # The first fault of a role always lands (none of its members is down yet).
    assert {f.role for f in outcome.faults} == {role for role, _ in kinds}, report
    assert read_journal(outcome.workdir / "runs.log"), report  # else check_runs is vacuous
    assert outcome.result.bad_inputs, report
    assert outcome.violations == [], "\n".join(v.render() for v in outcome.violations)


def _events_of(settings: Settings, instance_id: str) -> list[LogRecord]:
    return [
        r
        for r in read_log(settings)
        if r.event is not None and getattr(r.event, "instance_id", None) == instance_id
    ]


def _succeeded(settings: Settings, instance_id: str) -> bool:
    return any(isinstance(r.event, WorkflowSucceeded) for r in _events_of(settings, instance_id))


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
    params = {"CHAOS_JOURNAL": str(journal)}
    journaled = [{"code": "only", "command": JOURNAL + "sleep 0.2"}]
    one_slot = {"TIDEFLOW_WORKER_ID": "worker-1", "TIDEFLOW_WORKER_SLOTS": "1"}
    fleet.start("master", "master-1")
    fleet.start("worker", "worker-1", **one_slot)
    # Once an instance has run, the master owns its partitions and places work on worker-1.
    canary = send_start(deployment, "canary", [{"code": "only", "type": "noop"}])
    wait_until(lambda: _succeeded(deployment, canary), what="the canary to succeed")
    worker = fleet.procs["worker-1"]
    os.kill(worker.pid, signal.SIGSTOP)  # the dispatch waits unread until the master is gone
    iid = send_start(deployment, "ran-twice", journaled, params)
    wait_until(
        lambda: any(isinstance(r.event, TaskDispatched) for r in _events_of(deployment, iid)),
        what="the dispatch",
    )
    fleet.kill("master-1")
    os.kill(worker.pid, signal.SIGCONT)
    wait_until(
        lambda: finished_acks(deployment, iid), what="its finished ack on the commands topic"
    )
    fleet.stop("worker-1")  # graceful: every ack delivered
    fleet.start("worker", "worker-1", **one_slot)
    fleet.start("master", "master-2")
    wait_until(lambda: _succeeded(deployment, iid), timeout_s=60, what="the instance to succeed")

    # A second run would come from a dispatch master-2 wrote on taking over, before the
    # instance succeeded. Worker-1 reads its dispatch partition in order and runs one attempt
    # at a time, so once an instance started now has run there, a second run would have
    # written its journal line.
    later = send_start(deployment, "later", journaled, params)
    wait_until(lambda: _succeeded(deployment, later), timeout_s=60, what="a later instance")
    journal_lines = read_journal(journal)
    assert [line[0] for line in journal_lines].count(later) == 1  # the journal sees runs
    log = EventLog(_events_of(deployment, iid))
    runs = [Run(i, c, n, w, pid) for i, c, n, w, pid in journal_lines if i == iid]
    violations = check_runs(log, runs) + check_attempts(log)
    assert violations == [], "\n".join(v.render() for v in violations)
