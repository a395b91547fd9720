"""`run_bench`: one run of every selected section, on the local stack or the configured
broker and database, with a progress display; returns (and writes) every figure.

Order: the ceiling; then a fleet (projector, `workers` workers of `worker_slots` slots, one
master) on a deployment of its own (topic prefix `bench<tag>.`, schema `bench_<tag>`):
warm-up, chains (noop, shell), the wide DAG, the throughput burst (projection lag, CPU per
role, warnings the roles logged and, when asked, py-spy profiles taken meanwhile); then a
second, fresh deployment and fleet with two masters for the burst again, so a first burst
that jammed cannot leak into it; then the rebuild, on a third deployment, with no fleet
competing for the cores; the failover kills on a fourth deployment and a fleet of 2 masters
of their own (failover.py). A section that fails records `{"error": ...}` and the run goes
on; a burst that jams is reported as it stands (`complete: false`). The deployments'
topics and schemas are removed at the end unless `keep` (or the stack was started for the
run and goes away with it).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import platform
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import confluent_kafka
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from infra.bench import ceiling as ceiling_mod
from infra.bench.failover import measure_failover
from infra.bench.fleet import Running, deployment, drop_deployment, running, wait_split, warm_up
from infra.bench.options import READ_MODEL_REPEATS, READ_MODEL_SCALE, BenchOptions, Scale
from infra.bench.processes import (
    cpu_seconds,
    log_sizes,
    log_warnings,
    percent,
)
from infra.bench.profiling import Sampler, py_spy, summarise
from infra.bench.readmodels import measure_read_models, print_read_models
from infra.bench.recovery import measure_recovery
from infra.bench.report import add_ratios, print_report, write_json
from infra.bench.scenarios import (
    FANOUT_WIDTH,
    Note,
    fan_workflow,
    run_chain,
    run_wide,
)
from infra.bench.throughput import projection_lag, run_burst
from infra.bench.watch import CheckpointProbe
from infra.prepare import prepare
from infra.settings import Settings, load_settings
from infra.stack import LocalStack
from streams.kafka.config import Role

log = logging.getLogger("tideflow.bench")

FLEET_SECTIONS = ("chain", "throughput", "wide", "lag")
IDLE_S = 3.0  # idle CPU is sampled this long before each burst
ROLES: tuple[Role, ...] = ("master", "worker", "projector")
# (role, process, samples/s): py-spy's cost grows with the threads sampled (a worker has
# one per slot), and a sampler that eats a core changes what it measures.
PROFILED = (
    ("master", "master-1", 100),
    ("worker", "worker-1", 20),
    ("projector", "projector", 50),
)


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _meta(options: BenchOptions, scale: Scale, settings: Settings, local: bool) -> dict[str, Any]:
    consumer = settings.kafka.consumer_config("master", "meta")
    producer = settings.kafka.producer_config()
    return {
        "scale": options.scale,
        "params": asdict(scale),
        "sections": sorted(options.only),
        "started_at": datetime.now(UTC).isoformat(),
        "commit": _git_commit(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "confluent_kafka": str(confluent_kafka.__version__),
        "librdkafka": confluent_kafka.libversion()[0],
        "broker": "local Tansu (started for the run)" if local else settings.bootstrap,
        "partitions": settings.tideflow_partitions,
        "fetch_wait_max_ms": {
            role: settings.kafka.consumer_config(role, "meta")["fetch.wait.max.ms"]
            for role in ROLES
        },
        "linger_ms": producer.get("linger.ms"),
        "session_timeout_ms": consumer.get("session.timeout.ms"),
    }


class Sections:
    """The progress display: one line per section, its description updated by `note`."""

    def __init__(self, progress: Progress, results: dict[str, Any]) -> None:
        self.progress = progress
        self.results = results

    @contextlib.contextmanager
    def section(self, key: str, title: str) -> Iterator[Note]:
        task: TaskID = self.progress.add_task(title, total=1)

        def note(text: str) -> None:
            self.progress.update(task, description=f"{title}: {text}")

        started = time.monotonic()
        try:
            yield note
        except Exception as exc:  # one failed section must not lose the others' figures
            log.exception("bench section %s failed", key)
            self.results[key] = {"error": f"{type(exc).__name__}: {exc}"}
            self.progress.update(task, description=f"[red]{title}: failed[/red] ({exc})")
        else:
            self.progress.update(task, description=f"{title}: done")
        finally:
            took = time.monotonic() - started
            self.progress.update(task, completed=1)
            self.results.setdefault("durations_s", {})[key] = round(took, 1)


def _fleet_sections(
    settings: Settings,
    second: Settings,
    options: BenchOptions,
    scale: Scale,
    sections: Sections,
    log_dir: Path,
    stack_pids: dict[str, int],
) -> None:
    """Everything with one master on `settings`; the 2-master burst on a deployment and
    fleet of its own (`second`), so a jam of the first burst cannot leak into it."""
    results = sections.results
    with running(settings, scale, log_dir / "1-master", 1) as run:
        with sections.section("warmup", "fleet warm-up") as note:
            warm_up(run.starter, run.watcher, run.alive, note)
        if "warmup" in results:  # failed: nothing would run
            return
        starter, watcher = run.starter, run.watcher
        if options.wants("chain"):
            with sections.section("chain", "chain of 10 noop tasks") as note:
                results["chain"] = run_chain(starter, watcher, scale.chain_runs, False, note)
            with sections.section("chain_shell", "chain of 10 shell tasks") as note:
                results["chain_shell"] = run_chain(starter, watcher, scale.shell_runs, True, note)
        if options.wants("wide"):
            with sections.section("wide", "wide DAG") as note:
                results["wide"] = run_wide(starter, watcher, scale.wide_width, note)
        if options.wants("throughput") or options.wants("lag"):
            _burst(run, options, scale, sections, stack_pids, 1)
    if not options.wants("throughput"):
        return
    with sections.section("second_fleet", "fresh deployment, 2 masters") as note:
        note("provisioning")
        prepare(second)
    if "second_fleet" in results:
        return
    with running(second, scale, log_dir / "2-masters", 2) as run:
        with sections.section("second_warmup", "2 masters: warm-up") as note:
            note("waiting for the partitions to split")
            if not wait_split(
                run.watcher, run.log_dir / "master-2.log", second.tideflow_partitions, 60.0
            ):
                results["second_split"] = {"note": "no split seen within 60 s"}
            warm_up(run.starter, run.watcher, run.alive, note)
        if "second_warmup" not in results:
            _burst(run, options, scale, sections, stack_pids, 2)
    added = second_master(results)
    if added is not None:
        results["second_master"] = added


def _master_cpu_s_per_1k(found: dict[str, Any]) -> float | None:
    """CPU seconds all masters used per 1,000 completed tasks in a burst."""
    tasks = found.get("tasks_succeeded") or 0
    elapsed = found.get("elapsed_s") or 0.0
    cpu = found.get("cpu_percent") or {}
    if not tasks or not elapsed:
        return None
    used = sum(float(v) for k, v in cpu.items() if k.startswith("master")) / 100 * elapsed
    return round(float(used) / tasks * 1000, 3)


def second_master(results: dict[str, Any]) -> dict[str, Any] | None:
    """What the second master adds, from the two bursts of one run: the change in completed
    tasks/s, the broker's idle CPU it adds (its fetches poll all the time), its own idle
    CPU, and the masters' CPU per 1,000 tasks with one and with two."""
    one, two = results.get("throughput_1_master"), results.get("throughput_2_masters")
    if not isinstance(one, dict) or not isinstance(two, dict) or "error" in one or "error" in two:
        return None
    idle1, idle2 = one.get("idle_cpu_percent") or {}, two.get("idle_cpu_percent") or {}
    rate1, rate2 = one.get("tasks_per_s") or 0.0, two.get("tasks_per_s") or 0.0
    return {
        "tasks_per_s_change_pct": round(100 * (rate2 / rate1 - 1), 1) if rate1 else None,
        "idle_broker_cpu_added_pct": round(idle2.get("broker", 0.0) - idle1.get("broker", 0.0), 1),
        "idle_cpu_of_the_second_pct": idle2.get("master-2"),
        "master_cpu_s_per_1k_tasks": {
            "1_master": _master_cpu_s_per_1k(one),
            "2_masters": _master_cpu_s_per_1k(two),
        },
    }


def _burst(
    run: Running,
    options: BenchOptions,
    scale: Scale,
    sections: Sections,
    stack_pids: dict[str, int],
    masters: int,
) -> None:
    results = sections.results
    key = "throughput_1_master" if masters == 1 else "throughput_2_masters"
    title = f"throughput, {masters} master{'s' * (masters > 1)}"
    samplers: dict[str, Sampler] = {}
    fleet, watcher, log_dir = run.fleet, run.watcher, run.log_dir
    workflow = run.starter.register(fan_workflow("bench-fan", FANOUT_WIDTH))
    probe = CheckpointProbe(run.settings).start()
    with contextlib.ExitStack() as cleanup, sections.section(key, title) as note:
        cleanup.callback(probe.stop)
        if masters == 1 and options.profile_dir is not None:
            if py_spy() is None:
                results["profile"] = {"error": "py-spy is not installed"}
            else:
                for role, name, rate in PROFILED:
                    out = options.profile_dir / f"{role}.collapsed.txt"
                    samplers[role] = Sampler(fleet.procs[name].pid, out, rate)
        note("idle CPU")
        idle_before, idle_started = cpu_seconds(fleet, stack_pids), time.monotonic()
        time.sleep(IDLE_S)
        idle_after, idle_took = cpu_seconds(fleet, stack_pids), time.monotonic() - idle_started
        logs_before = log_sizes(log_dir)
        cpu_before, started = cpu_seconds(fleet, stack_pids), time.monotonic()
        try:
            found, ids = run_burst(run.starter, watcher, workflow, scale.throughput_instances, note)
            took = time.monotonic() - started
            cpu_after = cpu_seconds(fleet, stack_pids)
        finally:
            for sampler in samplers.values():
                sampler.stop()
        found["log_warnings"] = log_warnings(log_dir, logs_before)
        # % of one core over the burst (this machine has `meta.cpus` of them)
        found["cpu_percent"] = percent(cpu_before, cpu_after, took)
        # the same with nothing to do, just before: what polling costs (fetch.wait.max.ms)
        found["idle_cpu_percent"] = percent(idle_before, idle_after, idle_took)
        if options.wants("throughput"):
            results[key] = found
        if options.wants("lag"):
            lag = projection_lag(watcher, probe, ids, note)
            results["lag" if masters == 1 else "lag_2_masters"] = lag
    if samplers:
        results["profile"] = {role: summarise(s.out) for role, s in samplers.items()}


def run_bench(options: BenchOptions, console: Console) -> dict[str, Any]:
    """Run the benchmark `options` describe; print the table; write the JSON if asked."""
    scale = options.scale_params()
    base = options.settings if options.settings is not None else load_settings()
    results: dict[str, Any] = {}
    stack = LocalStack(base)
    started = time.monotonic()
    try:
        stack_settings = stack.start()
        local = "broker" in stack.pids
        tag = uuid.uuid4().hex[:8]
        settings = deployment(stack_settings, tag)
        second_settings = deployment(stack_settings, f"{tag}m")
        recovery_settings = deployment(stack_settings, f"{tag}r")
        read_model_settings = deployment(stack_settings, f"{tag}q")
        failover_settings = deployment(stack_settings, f"{tag}f")
        log_dir = options.log_dir or Path(tempfile.mkdtemp(prefix="tideflow-bench-"))
        results["meta"] = _meta(options, scale, settings, local)
        results["meta"]["logs"] = str(log_dir)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            sections = Sections(progress, results)
            with sections.section("ceiling", "ceiling (plain confluent-kafka)") as note:
                results["ceiling"] = ceiling_mod.measure_ceiling(
                    settings, scale.ceiling_round_trips, scale.ceiling_records, note
                )
            if any(options.wants(s) for s in FLEET_SECTIONS):
                with sections.section("prepare", "topics and read models") as note:
                    note("provisioning")
                    prepare(settings)
                _fleet_sections(
                    settings, second_settings, options, scale, sections, log_dir, stack.pids
                )
            if options.wants("readmodels"):
                projected, total = READ_MODEL_SCALE[options.scale]
                with sections.section("readmodels", "read models at scale") as note:
                    results["readmodels"] = measure_read_models(
                        read_model_settings, projected, total, READ_MODEL_REPEATS, note
                    )
            if options.wants("failover"):
                with sections.section("failover", "failover (SIGKILL, quiet fleet)") as note:
                    note("provisioning")
                    prepare(failover_settings)
                    results["failover"] = measure_failover(
                        failover_settings, scale, log_dir / "failover", note
                    )
            if options.wants("recovery"):
                with sections.section("recovery", "master rebuild") as note:
                    results["recovery"] = measure_recovery(
                        recovery_settings, scale.recovery_events, note
                    )
        if not options.keep:  # what a stack started for the run holds goes with it
            pids = stack.pids
            for used in (
                settings,
                second_settings,
                recovery_settings,
                failover_settings,
                read_model_settings,
            ):
                drop_deployment(used, "broker" not in pids, "postgres" not in pids)
    finally:
        gc.collect()  # Kafka clients in reference cycles (a Master's callbacks) go first
        stack.stop()
    results.setdefault("meta", {})["duration_s"] = round(time.monotonic() - started, 1)
    add_ratios(results)
    print_report(results, console)
    print_read_models(results.get("readmodels"), console)
    if options.json_path is not None:
        write_json(results, options.json_path)
        console.print(f"figures written to {options.json_path}")
    return results
