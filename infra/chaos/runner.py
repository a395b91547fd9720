"""`run_chaos`: a seeded chaos run end to end, and the exit code of `tideflow chaos`.

1. A stack (the local one unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL name servers) and
   a fresh deployment (topic prefix + schema) tuned for fast failover: worker timeout ~3 s,
   heartbeats every second, a 3 s consumer-group session, a 10 s dispatch-ack timeout, and
   master snapshots every 5 s (so takeovers under chaos start from snapshots too).
2. `masters` masters, `workers` workers (stable ids worker-1..N) and the projector, started
   as processes; the chaos workflows registered; a canary instance proves the path works.
3. Fault phase (`duration_s`): the load (load.py) and the bad input (bad_input.py) run while
   the supervisor (faults.py) kills and restarts processes and restarts PostgreSQL.
4. Faults stop; every role is brought back; the run waits (bounded) until every started
   instance is terminal in the log, every partition has a running owner, and the projector
   has caught up with the log.
5. The checker (check.py) runs on the log, the read models, the run journal, the bad
   inputs and the dead letters; report.py prints what happened and every violation. The
   work directory keeps the process logs, the run journal, events.txt (the log, a line per
   record), faults.txt and violations.txt.

Exit code: 0 only if every invariant held; 1 on a violation; 2 if the run could not start.
"""

from __future__ import annotations

import random
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from api.service import Service
from infra import compose
from infra.chaos.bad_input import BadInputs
from infra.chaos.check import (
    ArchiveRow,
    DeadLetter,
    EventLog,
    Evidence,
    LogRecord,
    Run,
    Violation,
    check,
    describe,
)
from infra.chaos.faults import (
    DEFAULT_WEIGHTS,
    PAUSE_WEIGHTS,
    Supervisor,
    plan_faults,
    restart_postgres,
)
from infra.chaos.load import Load, read_journal, workflows
from infra.chaos.measure import failover_times, owner_pid
from infra.chaos.outcome import ChaosAborted, ChaosOptions, ChaosOutcome
from infra.chaos.report import print_report
from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings, load_settings
from infra.stack import LocalStack
from projections import queries
from schemas.catalog import EVENTS
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.core.commands import StartWorkflow
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from streams.postgres.connection import connect

# -- reading what happened ----------------------------------------------------------------------


def read_log(settings: Settings) -> list[LogRecord]:
    out = []
    for msg in read_to_end(settings.kafka, settings.topics.events, timeout_s=60):
        p, o, key = msg.partition(), msg.offset(), msg.key()
        assert p is not None and o is not None
        k = None if key is None else key.decode(errors="replace")
        try:
            out.append(LogRecord(p, o, expect(msg.value(), EVENTS), k))
        except DecodeError as exc:
            out.append(LogRecord(p, o, None, k, str(exc)))
    return out


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def read_dead_letters(settings: Settings) -> list[DeadLetter]:
    out = []
    for msg in read_to_end(settings.kafka, settings.topics.dead_letter, timeout_s=60):
        h = {str(k): _text(v) for k, v in list(msg.headers() or [])}
        out.append(
            DeadLetter(
                h.get("tideflow.topic", "?"),
                h.get("tideflow.partition", "?"),
                h.get("tideflow.offset", "?"),
                msg.value(),
                h.get("tideflow.reason", "?"),
            )
        )
    return out


def projected(settings: Settings) -> dict[int, int]:
    """The projector's checkpoint (next offset) per events partition."""
    with connect(settings.db) as conn:
        rows = conn.execute(
            "SELECT partition, next_offset FROM projector_checkpoints"
            " WHERE consumer = 'projector' AND topic = %s",
            (settings.topics.events,),
        ).fetchall()
    return {int(p): int(n) for p, n in rows}


def read_models(
    settings: Settings, instance_ids: Sequence[str]
) -> tuple[dict[str, dict[str, Any] | None], list[ArchiveRow]]:
    with connect(settings.db) as conn:
        rows = {iid: queries.get_instance(conn, iid) for iid in instance_ids}
        archive = [
            ArchiveRow(int(p), int(o), str(t), i, None if e is None else int(e))
            for p, o, t, i, e in conn.execute(
                'SELECT partition, "offset", event_type, instance_id, epoch FROM event_archive'
                " WHERE topic = 'events'"
            ).fetchall()
        ]
    return rows, archive


def _unfinished(log: EventLog, started: Sequence[str]) -> list[str]:
    out = []
    for iid in started:
        state = log.state(iid).state
        if state is None or not state.finished:
            out.append(iid)
    return out


def _facts_of(log: EventLog, started: Sequence[str]) -> int:
    return sum(len(log.by_instance.get(iid, ())) for iid in started)


# -- the run ------------------------------------------------------------------------------------


def _deployment(base: Settings, options: ChaosOptions) -> Settings:
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


def run(options: ChaosOptions, console: Console) -> ChaosOutcome:
    """One chaos run; never raises for a violation (they are in the outcome)."""
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="tideflow-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    outcome = ChaosOutcome(options, workdir)
    say: Callable[[str], None] = lambda msg: console.log(msg)  # noqa: E731
    began = time.monotonic()
    stack = LocalStack(options.settings or load_settings())
    with stack as stack_settings:
        settings = _deployment(stack_settings, options)
        outcome.deployment = f"topics {settings.tideflow_topic_prefix}* schema {settings.dsn}"
        prepare(settings)
        pg_restart = None
        if not options.postgres_faults:
            outcome.notes.append("PostgreSQL restarts disabled by option")
        elif stack.pg_data is None:
            outcome.notes.append(
                "DATABASE_URL points to an external server: PostgreSQL restarts skipped"
            )
        else:
            pg_data, pg_log = stack.pg_data, workdir / "pg_ctl.log"
            pg_restart = lambda: restart_postgres(pg_data, pg_log)  # noqa: E731
        outcome.phases["stack"] = time.monotonic() - began
        with Fleet(settings, log_dir=workdir / "logs") as fleet:
            roles: dict[str, tuple[str, dict[str, str]]] = {"projector": ("projector", {})}
            roles |= {f"master-{i}": ("master", {}) for i in range(1, options.masters + 1)}
            roles |= {
                f"worker-{i}": ("worker", {"TIDEFLOW_WORKER_ID": f"worker-{i}"})
                for i in range(1, options.workers + 1)
            }
            sup = Supervisor(fleet, roles, pg_restart, options.max_down, say)
            service = compose.service(settings)
            try:
                _run_phases(options, console, settings, sup, service, outcome, workdir)
            finally:
                service.close()
                outcome.faults, outcome.skipped = list(sup.faults), list(sup.skipped)
                outcome.crashes, outcome.notes = list(sup.crashes), outcome.notes + sup.notes
                say("stopping the fleet")
    outcome.phases["total"] = time.monotonic() - began
    outcome.snapshot_takeovers = _snapshot_takeovers(workdir / "logs")
    _dump(outcome)
    return outcome


def _run_phases(
    options: ChaosOptions,
    console: Console,
    settings: Settings,
    sup: Supervisor,
    service: Service,
    outcome: ChaosOutcome,
    workdir: Path,
) -> None:
    say = sup.on_event
    t = time.monotonic()
    sup.start_all()
    definitions = {}
    for code, wf in workflows().items():
        registered = service.register(wf, by="chaos", wait_s=60)
        definitions[code] = service.definition(code, registered.version)
    journal, scratch = workdir / "runs.log", workdir / "scratch"
    scratch.mkdir(exist_ok=True)
    params = {"CHAOS_JOURNAL": str(journal), "CHAOS_DIR": str(scratch)}
    canary = f"chaos-{options.seed}-canary"
    _canary(settings, definitions["chaos-noop"], canary, params, sup)
    outcome.started.append(canary)
    outcome.phases["warm-up"] = time.monotonic() - t
    say(
        f"fleet up and canary done in {outcome.phases['warm-up']:.1f}s; faults for "
        f"{options.duration_s:.0f}s (seed {options.seed})"
    )

    # -- fault phase ---------------------------------------------------------------------
    seeds = random.Random(options.seed)
    load = Load(
        settings,
        definitions,
        params,
        random.Random(seeds.random()),
        options.start_rate,
        options.seed,
    )
    bad = BadInputs(
        settings,
        random.Random(seeds.random()),
        options.bad_input_rate,
        load.snapshot,
        load.workflow_of,
        definitions,
        [f"worker-{i}" for i in range(1, options.workers + 1)],
        options.seed,
    )
    weights = DEFAULT_WEIGHTS | (PAUSE_WEIGHTS if options.pause_faults else {})
    plan = plan_faults(
        options.seed,
        options.duration_s,
        options.fault_interval_s,
        weights=weights,
        postgres=sup.pg_restart is not None,
    )
    outcome.planned = plan
    stop_load, inject, stop_sup = threading.Event(), threading.Event(), threading.Event()
    inject.set()
    t0 = time.monotonic()
    threads = [
        threading.Thread(target=load.run, args=(stop_load,), name="chaos-load", daemon=True),
        threading.Thread(target=bad.run, args=(stop_load,), name="chaos-bad", daemon=True),
        threading.Thread(
            target=sup.run, args=(plan, t0, inject, stop_sup), name="chaos-sup", daemon=True
        ),
    ]
    for th in threads:
        th.start()
    try:
        next_status = t0 + 10
        while time.monotonic() - t0 < options.duration_s:
            time.sleep(0.2)
            if time.monotonic() >= next_status:
                next_status += 10
                say(
                    f"t={time.monotonic() - t0:.0f}s started {len(load.started)} instances, "
                    f"{len(sup.faults)} faults, {len(bad.sent)} bad inputs"
                )
        stop_load.set()
        inject.clear()
        for th in threads[:2]:
            th.join(30)
        outcome.phases["faults"] = time.monotonic() - t0
        outcome.started += load.snapshot()
        outcome.controls = len(load.controls)
        outcome.notes += load.errors + bad.errors

        # -- recovery --------------------------------------------------------------------
        t = time.monotonic()
        say("faults stopped; bringing every role back")
        if not sup.heal(60):
            outcome.notes.append("not every role was running again within 60s")
        _settle(
            settings, outcome.started, options.settle_timeout_s, say, lambda: sup.pids("master")
        )
        outcome.phases["settle"] = time.monotonic() - t
        t = time.monotonic()
        records, rows, archive = _consistent_read(settings, outcome.started, say)
        outcome.phases["catch-up"] = time.monotonic() - t
    finally:
        stop_load.set()
        inject.clear()
        stop_sup.set()
        threads[2].join(10)

    # -- checks ------------------------------------------------------------------------------
    runs = [Run(i, c, n, w, pid) for i, c, n, w, pid in read_journal(journal)]
    evidence = Evidence(
        records, outcome.started, rows, archive, runs, bad.sent, read_dead_letters(settings)
    )
    outcome.result = result = check(evidence)
    outcome.timings = failover_times(result.log, sup.faults)
    outcome.violations = list(result.violations)
    for crash in sup.crashes:
        outcome.violations.append(
            Violation(
                "crash",
                crash.name,
                f"exited on its own with {crash.returncode} at {crash.at:%H:%M:%S}",
                tuple(crash.log_tail.splitlines()[-8:]),
            )
        )


_TAKEOVER_LINE = re.compile(r"taken over at epoch \d+: snapshot (\w+)")


def _snapshot_takeovers(log_dir: Path) -> dict[str, int]:
    """How the masters' takeovers started ("used": from a snapshot), from their logs."""
    found: Counter[str] = Counter()
    for path in sorted(log_dir.glob("master-*.log")):
        found.update(m.group(1) for m in _TAKEOVER_LINE.finditer(path.read_text(errors="replace")))
    return dict(found)


def _dump(outcome: ChaosOutcome) -> None:
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


def _canary(
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


def _orphans(log: EventLog, partitions: int, masters: set[int]) -> list[int]:
    """Partitions whose latest takeover names no running master (or that have none)."""
    owner: dict[int, int | None] = {}
    for r in log.takeovers:
        owner[r.partition] = owner_pid(r.event.owner)
    return [p for p in range(partitions) if owner.get(p) not in masters]


def _settle(
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
        pending = _unfinished(log, started)
        orphans = _orphans(log, settings.tideflow_partitions, masters())
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


def _consistent_read(
    settings: Settings, started: Sequence[str], say: Callable[[str], None]
) -> tuple[list[LogRecord], dict[str, dict[str, Any] | None], list[ArchiveRow]]:
    """The log, and the read models once the projector has caught up with it; read again
    while the instances' facts keep changing (at most 3 times)."""
    records = read_log(settings)
    rows: dict[str, dict[str, Any] | None] = {}
    archive: list[ArchiveRow] = []
    for _ in range(3):
        log = EventLog(records)
        ends = log.ends()
        deadline = time.monotonic() + 60
        while True:
            try:
                done = projected(settings)
            except Exception as exc:  # PostgreSQL may still be coming back
                say(f"checkpoints unreadable: {exc}")
                done = {}
            if all(done.get(p, 0) >= n for p, n in ends.items()):
                break
            if time.monotonic() >= deadline:
                behind = {p: (done.get(p, 0), n) for p, n in ends.items()}
                say(f"projector still behind the log after 60s: {behind}")
                break
            time.sleep(0.3)
        rows, archive = read_models(settings, started)
        again = read_log(settings)
        if _facts_of(EventLog(again), started) == _facts_of(log, started):
            return records, rows, archive
        records = again
    return records, rows, archive


def run_chaos(options: ChaosOptions, console: Console) -> int:
    """Run, print the report; 0 only if every invariant held (1: violations, 2: aborted)."""

    try:
        outcome = run(options, console)
    except ChaosAborted as exc:
        console.print(f"[red]chaos run aborted:[/red] {exc}")
        return 2
    print_report(outcome, console)
    return 0 if outcome.ok else 1
