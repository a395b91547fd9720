"""`run_chaos`: a seeded chaos run end to end, and the exit code of `tideflow chaos`.

1. A stack (the local one unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL name servers) and
   a fresh deployment (topic prefix + schema) with the default failover settings (worker
   timeout 1.5 s, heartbeats every 0.5 s, a 1 s consumer-group session), a 10 s dispatch-ack
   timeout, and master snapshots every 5 s (so takeovers under chaos start from snapshots too).
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
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from api.service import Service
from infra import compose
from infra.chaos.bad_input import BadInputs
from infra.chaos.check import Evidence, check
from infra.chaos.evidence import (
    consistent_read,
    read_dead_letters,
)
from infra.chaos.faults import (
    DEFAULT_WEIGHTS,
    PAUSE_WEIGHTS,
    Supervisor,
    plan_faults,
    restart_postgres,
)
from infra.chaos.load import Load, read_journal, workflows
from infra.chaos.measure import failover_times
from infra.chaos.outcome import ChaosAborted, ChaosOptions, ChaosOutcome
from infra.chaos.phases import canary, deployment, dump, settle, snapshot_takeovers
from infra.chaos.records import Run, Violation
from infra.chaos.report import print_report
from infra.chaos.schedule_invariants import check_schedule_fires, fired_instances
from infra.chaos.schedules import PAUSE_WEIGHTS as SCHEDULER_PAUSE_WEIGHTS
from infra.chaos.schedules import WEIGHTS as SCHEDULER_WEIGHTS
from infra.chaos.schedules import ChaosSchedules
from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings, load_settings
from infra.stack import LocalStack

# -- the run ------------------------------------------------------------------------------------


def run(options: ChaosOptions, console: Console) -> ChaosOutcome:
    """One chaos run; never raises for a violation (they are in the outcome)."""
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="tideflow-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    outcome = ChaosOutcome(options, workdir)
    say: Callable[[str], None] = lambda msg: console.log(msg)  # noqa: E731
    began = time.monotonic()
    stack = LocalStack(options.settings or load_settings())
    with stack as stack_settings:
        settings = deployment(stack_settings, options)
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
            roles |= {f"scheduler-{i}": ("scheduler", {}) for i in range(1, options.schedulers + 1)}
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
    outcome.snapshot_takeovers = snapshot_takeovers(workdir / "logs")
    dump(outcome)
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
    canary_id = f"chaos-{options.seed}-canary"
    canary(settings, definitions["chaos-noop"], canary_id, params, sup)
    outcome.started.append(canary_id)
    schedules = None
    if options.schedulers:
        schedules = ChaosSchedules(settings, "chaos-noop", options.schedules, options.seed)
        schedules.create()
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
    if schedules is not None:
        weights |= SCHEDULER_WEIGHTS | (SCHEDULER_PAUSE_WEIGHTS if options.pause_faults else {})
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
        if schedules is not None:
            schedules.take_offline()
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
        if schedules is not None:
            if not schedules.wait_offline(60, say):
                outcome.notes.append("not every chaos schedule was taken offline within 60s")
            fired = fired_instances(schedules.read_back()[1])
            say(f"schedules fired {len(fired)} instances")
            outcome.started += [i for i in fired if i not in outcome.started]
        settle(settings, outcome.started, options.settle_timeout_s, say, lambda: sup.pids("master"))
        outcome.phases["settle"] = time.monotonic() - t
        t = time.monotonic()
        records, rows, archive = consistent_read(settings, outcome.started, say)
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
    if schedules is not None:
        chaos_schedules, fires = schedules.read_back()
        result.violations += check_schedule_fires(result.log, chaos_schedules, fires)
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


def run_chaos(options: ChaosOptions, console: Console) -> int:
    """Run, print the report; 0 only if every invariant held (1: violations, 2: aborted)."""

    try:
        outcome = run(options, console)
    except ChaosAborted as exc:
        console.print(f"[red]chaos run aborted:[/red] {exc}")
        return 2
    print_report(outcome, console)
    return 0 if outcome.ok else 1
