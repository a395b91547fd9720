"""The steps of a chaos run around its fault phase: the deployment it runs in, the canary
that proves the path works, settling until every instance ended, and the run's files."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.chaos.evidence import (
    read_log,
    unfinished,
    unowned_partitions,
)
from infra.chaos.faults import (
    Supervisor,
)
from infra.chaos.outcome import ChaosAborted, ChaosOptions, ChaosOutcome
from infra.chaos.records import EventLog, describe
from infra.settings import Settings
from streams.core.commands import StartWorkflow
from streams.kafka.producer import Producer


def deployment(base: Settings, options: ChaosOptions) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return base.model_copy(
        update={
            "tideflow_topic_prefix": f"chaos{tag}.",
            "tideflow_db_schema": f"chaos_{tag}",
            "tideflow_partitions": options.partitions,
            "tideflow_session_timeout_ms": options.session_timeout_ms,
            "tideflow_worker_timeout_s": options.worker_timeout_s,
            "tideflow_heartbeat_interval_s": options.heartbeat_interval_s,
            "tideflow_dispatch_ack_timeout_s": options.dispatch_ack_timeout_s,
            "tideflow_snapshot_interval_s": options.snapshot_interval_s,
            "tideflow_snapshot_every_events": 200,
            "tideflow_worker_slots": options.worker_slots,
        }
    )


_TAKEOVER_LINE = re.compile(r"taken over at epoch \d+: snapshot (\w+)")


def snapshot_takeovers(log_dir: Path) -> dict[str, int]:
    """How the masters' takeovers started ("used": from a snapshot), from their logs."""
    found: Counter[str] = Counter()
    for path in sorted(log_dir.glob("master-*.log")):
        found.update(m.group(1) for m in _TAKEOVER_LINE.finditer(path.read_text(errors="replace")))
    return dict(found)


def dump(outcome: ChaosOutcome) -> None:
    """The log as read (a line per record), the faults and the violations, in the workdir."""
    if outcome.result is not None:
        lines = [describe(r) for r in outcome.result.log.records]
        (outcome.workdir / "events.txt").write_text("\n".join(lines) + "\n")
    faults = [
        f"{f.at.isoformat()} {f.kind} {f.name} pid={f.pid} pause={f.pause_s}s"
        for f in outcome.faults
    ]
    (outcome.workdir / "faults.txt").write_text("\n".join(faults) + "\n")
    (outcome.workdir / "violations.txt").write_text(
        "".join(v.render() + "\n" for v in outcome.violations)
    )


def canary(
    settings: Settings, workflow: Any, iid: str, params: dict[str, str], sup: Supervisor
) -> None:
    """Start one no-op instance and wait until the log says it succeeded (60 s)."""
    producer = Producer(settings.kafka)
    command = StartWorkflow(
        command_id=f"start/{iid}",
        instance_id=iid,
        workflow=workflow,
        params=params,
        requested_by="chaos",
        at=datetime.now(UTC),
    )
    producer.send(settings.topics.commands, iid, command)
    producer.flush()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sup.tick()
        state = EventLog(read_log(settings)).state(iid).state
        if state is not None and state.finished:
            if state.name != "SUCCESS":
                raise ChaosAborted(f"canary instance {iid} ended {state.name}")
            return
        time.sleep(0.5)
    crashes = "; ".join(f"{c.name}: {c.log_tail.splitlines()[-1:]}" for c in sup.crashes[-3:])
    raise ChaosAborted(f"canary instance {iid} did not finish within 60s. {crashes}")


def settle(
    settings: Settings,
    started: Sequence[str],
    timeout_s: float,
    say: Callable[[str], None],
    masters: Callable[[], set[int]],
) -> EventLog:
    """Wait (bounded) until every started instance is terminal in the log and every
    partition has been taken over by a running master."""
    deadline = time.monotonic() + timeout_s
    next_note = time.monotonic() + 10
    while True:
        log = EventLog(read_log(settings))
        pending = unfinished(log, started)
        orphans = unowned_partitions(log, settings.tideflow_partitions, masters())
        if not pending and not orphans:
            say(f"all {len(started)} instances ended; every partition has a running owner")
            return log
        if time.monotonic() >= deadline:
            say(
                f"after {timeout_s:.0f}s: {len(pending)} instances not terminal, "
                f"partitions without a running owner: {orphans}"
            )
            return log
        if time.monotonic() >= next_note:
            next_note += 10
            say(
                f"waiting for {len(pending)} instances (e.g. {', '.join(pending[:3])}) "
                f"and owners of partitions {orphans}"
            )
        time.sleep(1.0)
