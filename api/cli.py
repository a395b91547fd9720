"""The `tideflow` command: operate workflows, and run the roles and the local stack.

Operations call the same `Service` as the HTTP API. Role commands (master, worker,
projector, api) run one process in the foreground; `up` runs them all on the local stack;
`demo` is the main job of the README: stack up, example workflow run, tables printed, down.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.definitions import load_file
from api.service import NotFound, Service
from infra.errors import TideflowError
from infra.settings import STACK_FILE, load_settings
from streams.core.definition import InvalidDefinition
from streams.core.enums import WorkflowState

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
workflow_app = typer.Typer(no_args_is_help=True, help="Workflow definitions.")
app.add_typer(workflow_app, name="workflow")
# Not a terminal (CI logs, pipes): wide enough that the task and event tables stay readable.
console = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)
EXAMPLE = Path(__file__).resolve().parent.parent / "infra" / "examples" / "nightly-etl.yaml"


def _service() -> Service:
    return Service(load_settings())


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


# -- workflows ---------------------------------------------------------------------------------


@workflow_app.command("apply")
def workflow_apply(file: Path) -> None:
    """Validate FILE (YAML or JSON) and register it as the workflow's next version."""
    try:
        workflow = load_file(file)
    except InvalidDefinition as exc:
        err.print(f"[red]invalid workflow definition[/red] {file}:")
        for problem in exc.problems:
            err.print(f"  - {problem}")
        raise typer.Exit(2) from exc
    result = _service().register(workflow, by="cli")
    verb = "registered" if result.created else "unchanged, already"
    console.print(f"{result.code}: {verb} version {result.version}")


@workflow_app.command("list")
def workflow_list() -> None:
    """Registered definitions (latest version of each)."""
    rows = _service().definitions()
    _print_rows(rows, ["code", "version", "description", "registered_at"])


# -- runs --------------------------------------------------------------------------------------


@app.command()
def run(
    code: str,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="k=v")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the end, showing progress")] = False,
    version: int | None = None,
    timeout: float = 600.0,
) -> None:
    """Start an instance of workflow CODE; prints its id (and waits with --wait)."""
    params = dict(p.split("=", 1) for p in (param or []) if "=" in p)
    service = _service()
    try:
        started = service.start(code, params, version=version, by="cli")
    except NotFound as exc:
        raise _fail(str(exc)) from exc
    console.print(f"instance {started['instance_id']}")
    if wait:
        total = len(service.definition(code, version).tasks)
        final = wait_with_progress(service, started["instance_id"], total, timeout)
        if final["state"] != WorkflowState.SUCCESS.name:
            raise typer.Exit(1)


def wait_with_progress(
    service: Service, instance_id: str, total: int, timeout: float
) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    final: dict[str, Any] = {}
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("waiting for a master", total=None)
        for final in service.wait_for_instance(instance_id, timeout):
            tasks = final.get("tasks", [])
            done = sum(1 for t in tasks if t["state"] == "SUCCESS")
            running = [t["task_code"] for t in tasks if t["state"] == "RUNNING_EXECUTION"]
            label = f"{final['state']:<18} " + (
                f"running: {', '.join(running[:3])}" if running else ""
            )
            progress.update(bar, description=label, completed=done, total=total)
    console.print(f"instance {instance_id}: [bold]{final.get('state')}[/bold]")
    return final


@app.command()
def status(instance_id: str) -> None:
    """An instance and its tasks (latest attempt of each)."""
    try:
        found = _service().instance(instance_id)
    except NotFound as exc:
        raise _fail(str(exc)) from exc
    print_instance(found)


@app.command()
def history(instance_id: str) -> None:
    """Every event of an instance, in log order."""
    print_history(_service().history(instance_id))


@app.command("instances")
def list_instances(workflow: str | None = None, state: str | None = None, limit: int = 50) -> None:
    """Instances, newest first, by workflow and state."""
    rows = _service().instances(workflow, state, limit)
    _print_rows(
        rows,
        ["instance_id", "workflow_code", "workflow_version", "state", "started_at", "ended_at"],
    )


def _control(action: str, instance_id: str) -> None:
    try:
        _service().control(instance_id, action)
    except NotFound as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{action} requested for {instance_id}")


@app.command()
def pause(instance_id: str) -> None:
    """Pause: running tasks finish, nothing new starts."""
    _control("pause", instance_id)


@app.command()
def stop(instance_id: str) -> None:
    """Stop: running tasks are killed."""
    _control("stop", instance_id)


@app.command()
def resume(instance_id: str) -> None:
    """Resume a paused, stopped or failed instance: unfinished tasks run again."""
    _control("resume", instance_id)


# -- printing ----------------------------------------------------------------------------------


def _print_rows(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    console.print(table)


def _clock(value: Any) -> str:
    """HH:MM:SS.mmm of an ISO timestamp (the date is in the instance line)."""
    text = str(value or "")
    return text[11:23] if len(text) >= 23 else text


def print_instance(found: dict[str, Any]) -> None:
    console.print(
        f"instance {found['instance_id']}  workflow {found['workflow_code']} "
        f"v{found['workflow_version']}  state [bold]{found['state']}[/bold] ({found['state_code']})"
        f"  started {found.get('started_at')}"
    )
    if found.get("failure_reason"):
        console.print(f"  {found['failure_reason']}")
    table = Table(title="task instances (PostgreSQL), every attempt")
    for c in ("task", "attempt", "state", "worker", "exit", "started", "ended", "valid"):
        table.add_column(c)
    for t in found.get("attempts") or found.get("tasks", []):
        table.add_row(
            t["task_code"],
            str(t["attempt"]),
            f"{t['state']} ({t['state_code']})",
            str(t.get("worker_id") or ""),
            "" if t.get("exit_code") is None else str(t["exit_code"]),
            _clock(t.get("started_at")),
            _clock(t.get("ended_at")),
            "yes" if t.get("valid") else "no",
        )
    console.print(table)


_DETAIL_KEYS = ("worker_id", "exit_code", "reason", "retry_at", "message")


def print_history(events: list[dict[str, Any]]) -> None:
    table = Table(title="event history (log order)")
    for c in ("partition", "offset", "at", "event", "task", "detail"):
        table.add_column(c)
    for e in events:
        payload = e.get("payload") or {}
        task = f"{payload['task_code']}#{payload.get('attempt')}" if "task_code" in payload else ""
        detail = "  ".join(
            f"{k}={_clock(v) if k == 'retry_at' else v}"
            for k in _DETAIL_KEYS
            if (v := payload.get(k)) not in (None, "")
        )
        table.add_row(
            str(e.get("partition")), str(e.get("offset")), _clock(e.get("at")),
            str(e.get("event_type")), task, detail,
        )  # fmt: skip
    console.print(table)


# -- roles and the local stack -------------------------------------------------------------


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("TIDEFLOW_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


@app.command()
def master() -> None:
    """Run a master (stream processor on the commands topic) until SIGTERM."""
    from streams.master.runtime import run_master

    _logging()
    run_master(load_settings())


@app.command()
def worker() -> None:
    """Run a worker until SIGTERM."""
    from streams.worker.worker import run_worker

    _logging()
    run_worker(load_settings())


@app.command()
def projector() -> None:
    """Run the projector (events -> PostgreSQL read models) until SIGTERM."""
    from projections.projector import run_projector

    _logging()
    run_projector(load_settings())


@app.command()
def api() -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from api.http import create_app

    _logging()
    settings = load_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.tideflow_api_host,
        port=settings.tideflow_api_port,
        log_level="warning",
    )


@app.command()
def migrate() -> None:
    """Create or upgrade the read-model schema in PostgreSQL."""
    from infra.prepare import prepare

    prepare(load_settings())
    console.print("read models migrated")


@app.command()
def replay(
    schema: Annotated[str, typer.Option(help="fresh schema to rebuild into")] = "tideflow_replay",
    compare: Annotated[bool, typer.Option(help="compare with the live schema")] = True,
) -> None:
    """Rebuild every read model from offset zero into a fresh schema (audit)."""
    from projections.replay import compare as compare_schemas
    from projections.replay import replay as run_replay

    settings = load_settings()
    counts = run_replay(settings, schema)
    console.print(f"replayed into {schema}: {counts}")
    if compare:
        diffs = compare_schemas(settings, settings.tideflow_db_schema, schema)
        for d in diffs[:50]:
            console.print(f"  differs: {d}")
        console.print("equal to the live read models" if not diffs else f"{len(diffs)} differences")
        if diffs:
            raise typer.Exit(1)


@app.command()
def up() -> None:
    """Run the whole stack in the foreground (broker, database, master, worker, projector,
    API) until Ctrl-C. Other `tideflow` commands in this directory find it on their own."""
    from infra.prepare import prepare
    from infra.processes import Fleet
    from infra.stack import LocalStack

    _logging()
    with LocalStack(load_settings()) as settings:
        prepare(settings)
        STACK_FILE.parent.mkdir(exist_ok=True)
        STACK_FILE.write_text(
            f"KAFKA_BOOTSTRAP_SERVERS={settings.bootstrap}\nDATABASE_URL={settings.dsn}\n"
        )
        try:
            with Fleet(settings, log_dir=STACK_FILE.parent / "logs") as fleet:
                for role in ("master", "worker", "projector", "api"):
                    fleet.start(role)
                console.print(f"broker   {settings.bootstrap}\ndatabase {settings.dsn}")
                console.print(
                    f"API      http://{settings.tideflow_api_host}:{settings.tideflow_api_port}/docs"
                )
                console.print(f"logs     {STACK_FILE.parent / 'logs'}\nCtrl-C stops everything.")
                stopping = False

                def _stop(*_: object) -> None:
                    nonlocal stopping
                    stopping = True

                signal.signal(signal.SIGTERM, _stop)
                signal.signal(signal.SIGINT, _stop)
                while not stopping:
                    for name, proc in fleet.procs.items():
                        if proc.poll() is not None:
                            err.print(f"{name} exited with {proc.returncode}; restarting it")
                            fleet.start(name)
                            break
                    time.sleep(0.5)
        finally:
            STACK_FILE.unlink(missing_ok=True)


@app.command()
def demo(file: Path = EXAMPLE) -> None:
    """The main job: start the local stack, register the example workflow (11 tasks, fan-out,
    fan-in, a task that fails once and succeeds on retry), run it, print its task table
    from PostgreSQL and its event history, then stop everything."""
    from infra.demo import run_demo

    raise typer.Exit(run_demo(file, console))


@app.command()
def chaos(
    duration: Annotated[float, typer.Option(help="seconds of faults")] = 120.0,
    seed: Annotated[int, typer.Option(help="seeds the load, the bad input and the fault plan")] = 1,
    masters: Annotated[int, typer.Option(help="master processes")] = 2,
    workers: Annotated[int, typer.Option(help="worker processes (ids worker-1..N)")] = 2,
    rate: Annotated[float, typer.Option(help="workflow instances started per second")] = 1.0,
    fault_interval: Annotated[float, typer.Option(help="mean seconds between faults")] = 4.0,
    settle_timeout: Annotated[
        float, typer.Option(help="bound on the wait for every instance to end")
    ] = 120.0,
    postgres_faults: Annotated[
        bool, typer.Option(help="restart a private PostgreSQL under the projector")
    ] = True,
    pause_faults: Annotated[
        bool, typer.Option(help="also SIGSTOP/SIGCONT masters and workers (zombies)")
    ] = False,
    workdir: Annotated[
        Path | None, typer.Option(help="process logs, run journal, events.txt (default: temp)")
    ] = None,
) -> None:
    """Kill and restart masters, workers and the projector (SIGKILL, SIGTERM) and restart
    PostgreSQL under a seeded load of mixed workflows and bad input, then check the invariants
    from the event log and the read models; exit 0 only if every one held."""
    from infra.chaos import ChaosOptions, run_chaos

    options = ChaosOptions(
        duration_s=duration, seed=seed, masters=masters, workers=workers, start_rate=rate,
        fault_interval_s=fault_interval, settle_timeout_s=settle_timeout,
        postgres_faults=postgres_faults, pause_faults=pause_faults, workdir=workdir,
    )  # fmt: skip
    raise typer.Exit(run_chaos(options, console))


@app.command()
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="About a minute: fewer runs, 200 instances.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="More runs, 3,000 instances; several minutes.")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(
            help="Sections to run, comma-separated: ceiling,chain,throughput,wide,recovery,lag "
            "(the ceiling always runs: every figure is a ratio to it)."
        ),
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write every figure to this JSON file.")
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            help="py-spy the master, a worker and the projector during the 1-master "
            "throughput run; collapsed stacks go to this directory (pip install py-spy)."
        ),
    ] = None,
    logs: Annotated[
        Path | None, typer.Option(help="Keep the roles' logs here (default: a temp dir).")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Leave the run's topics and schemas.")] = False,
    scale: Annotated[
        str | None, typer.Option(help="smoke, quick, default or full.", hidden=True)
    ] = None,
) -> None:
    """Measure tideflow against the broker's own ceiling in one run: round trip, 10-task
    chains (noop and shell), 1,000 instances at once with 1 and 2 masters, a 1 -> 1,000 -> 1
    DAG, a master's rebuild of 100,000 events, projection lag. Starts the local stack unless
    KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set."""
    from infra.bench import BenchOptions, failed_sections, run_bench

    if quick and full:
        raise _fail("--quick and --full exclude each other", 2)
    chosen = scale or ("quick" if quick else "full" if full else "default")
    try:
        options = BenchOptions(
            scale=chosen,
            only=BenchOptions.parse_only(only),
            json_path=json_file,
            profile_dir=profile,
            log_dir=logs,
            keep=keep,
        )
    except ValueError as exc:
        raise _fail(str(exc), 2) from exc
    logging.basicConfig(
        level=os.environ.get("TIDEFLOW_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    results = run_bench(options, console)
    failed = failed_sections(results)
    if failed:
        err.print(f"[red]failed sections:[/red] {', '.join(failed)} (see the JSON)")
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except TideflowError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
