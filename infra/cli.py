"""The `tideflow` command: the operations of `api.cli`, plus the commands that run roles and
the local stack. The console script's entry point, and the one place the CLI reads settings.

Role commands (master, worker, projector, scheduler, api) run one process in the foreground;
`up` runs them all on the local stack; `demo` is the main job of the README: stack up, example
workflow run, tables printed, down.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from api.cli import app, console, err, fail
from api.cli import main as cli_main
from infra import compose
from infra.prepare import migrate_read_models
from infra.settings import STACK_FILE, load_settings
from streams.kafka.process import exit_keeping_membership, stop_on_signals

EXAMPLE = Path(__file__).resolve().parent / "examples" / "nightly-etl.yaml"


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("TIDEFLOW_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


@app.command()
def master() -> None:
    """Run a master (stream processor on the commands topic) until SIGTERM."""
    _logging()
    settings = load_settings()
    compose.master(settings).run(stop_on_signals())
    exit_keeping_membership(settings.kafka)


@app.command()
def scheduler() -> None:
    """Run a scheduler (fires the online schedules' cron times) until SIGTERM."""
    _logging()
    settings = load_settings()
    compose.scheduler(settings).run(stop_on_signals())
    exit_keeping_membership(settings.kafka)


@app.command()
def worker() -> None:
    """Run a worker until SIGTERM, then stop gracefully."""
    _logging()
    compose.worker(load_settings()).run(stop_on_signals())


@app.command()
def projector() -> None:
    """Migrate the read models, then run the projector (events -> PostgreSQL) until SIGTERM."""
    _logging()
    settings = load_settings()
    stop = stop_on_signals()
    migrate_read_models(settings, stop)
    with compose.projector(settings) as role:
        logging.getLogger("tideflow.projector").info(
            "projecting %s into schema %s", ", ".join(role.topics), settings.tideflow_db_schema
        )
        role.run(stop)
    exit_keeping_membership(settings.kafka)


@app.command()
def api() -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    _logging()
    settings = load_settings()
    uvicorn.run(
        compose.http_app(settings),
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
    check_decisions: Annotated[
        bool,
        typer.Option(
            "--check-decisions",
            help="instead: re-decide every recorded command, tick and failover with today's "
            "code and list each instance whose history would differ (exit 1)",
        ),
    ] = False,
    instance: Annotated[
        list[str] | None, typer.Option(help="with --check-decisions: only these instances")
    ] = None,
    switch: Annotated[
        bool,
        typer.Option(
            "--switch",
            help="then make the rebuilt schema the live one without downtime (the live "
            "projector carries on in it; the previous schema is kept under another name)",
        ),
    ] = False,
) -> None:
    """Rebuild every read model from offset zero into a fresh schema (audit)."""
    from projections.replay import compare as compare_schemas
    from projections.replay import replay as run_replay

    settings = load_settings()
    if check_decisions:
        from api.check_decisions import check_log

        report = check_log(settings.kafka, instance)
        for div in report.divergences:
            console.print(f"[red]{div.instance_id}[/red] at events offset {div.offset}")
            console.print(f"  decision {div.cause}: {div.why}")
            console.print(f"  recorded: {list(div.recorded)}")
            console.print(f"  decided:  {list(div.decided)}")
        console.print(
            f"{report.instances} instances, {report.events_read} events re-decided, "
            f"{report.unreadable} unreadable records: "
            + (f"{len(report.divergences)} would diverge" if report.divergences else "all the same")
        )
        if report.divergences:
            raise typer.Exit(1)
        return
    counts = run_replay(settings.kafka, settings.db, schema)
    console.print(f"replayed into {schema}: {counts}")
    if switch:
        from projections.replay import switch as switch_to

        previous = switch_to(settings.kafka, settings.db, schema)
        console.print(
            f"{settings.tideflow_db_schema} now holds the rebuilt read models; the previous ones"
            f" are in schema {previous} (DROP SCHEMA {previous} CASCADE when done)"
        )
        return
    if compare:
        diffs = compare_schemas(settings.db, settings.tideflow_db_schema, schema)
        for d in diffs[:50]:
            console.print(f"  differs: {d}")
        console.print("equal to the live read models" if not diffs else f"{len(diffs)} differences")
        if diffs:
            raise typer.Exit(1)


@app.command()
def retention(
    older_than: Annotated[
        str, typer.Option(help="finished instances that ended longer ago than this: 90d, 12h")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count only")] = False,
) -> None:
    """Retire finished instances older than an age from the read models (the log keeps
    them: time travel folds them, a replay brings them back)."""
    from projections.retention import retire
    from streams.core.definition import parse_duration
    from streams.postgres.connection import connect

    problems: list[str] = []
    seconds = parse_duration(older_than, "--older-than", problems)
    if seconds is None or problems:
        raise fail("; ".join(problems) or "--older-than: expected a duration like 90d", 2)
    settings = load_settings()
    with connect(settings.db) as conn:
        count = retire(conn, timedelta(seconds=seconds), datetime.now(UTC), dry_run=dry_run)
    console.print(f"{count} instances {'would be' if dry_run else ''} retired".replace("  ", " "))


audit_app = typer.Typer(no_args_is_help=True, help="Tamper evidence: seals over the logs.")
app.add_typer(audit_app, name="audit")


@audit_app.command("seal")
def audit_seal() -> None:
    """Extend each events and schedules partition's hash chain over its new records and print
    the new seals (keep them elsewhere too: they prove the log below them unchanged)."""
    from projections.seals import seal

    settings = load_settings()
    made = seal(settings.kafka, settings.db, datetime.now(UTC))
    for s in made:
        console.print(f"{s.topic}[{s.partition}] < {s.next_offset}: {s.records} records {s.digest}")
    console.print(f"{len(made)} new seals")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute every sealed partition's chain from the log; exit 1 naming each seal the log
    no longer matches (a record below it was changed, removed, added or reordered)."""
    from projections.seals import verify

    settings = load_settings()
    checked, broken = verify(settings.kafka, settings.db)
    for b in broken:
        s = b.seal
        console.print(
            f"[red]{s.topic}[{s.partition}] < {s.next_offset}[/red] (sealed {s.sealed_at}):"
            f" {b.detail}; sealed {s.digest}, found {b.found_digest}"
        )
    console.print(f"{checked} seals checked, {len(broken)} broken")
    if broken:
        raise typer.Exit(1)


@app.command()
def up() -> None:
    """Run the whole stack in the foreground (broker, database, master, worker, projector,
    scheduler, API) until Ctrl-C. Other `tideflow` commands in this directory find it on
    their own."""
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
                for role in ("master", "worker", "projector", "scheduler", "api"):
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
    schedulers: Annotated[
        int, typer.Option(help="scheduler processes, with schedules every 2 s (0: none)")
    ] = 0,
) -> None:
    """Kill and restart masters, workers and the projector (SIGKILL, SIGTERM) and restart
    PostgreSQL under a seeded load of mixed workflows and bad input, then check the invariants
    from the event log and the read models; exit 0 only if every one held."""
    from infra.chaos import ChaosOptions, run_chaos

    options = ChaosOptions(
        duration_s=duration, seed=seed, masters=masters, workers=workers, start_rate=rate,
        fault_interval_s=fault_interval, settle_timeout_s=settle_timeout,
        postgres_faults=postgres_faults, pause_faults=pause_faults, workdir=workdir,
        schedulers=schedulers,
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
            help="Sections to run, comma-separated: ceiling,chain,throughput,wide,recovery,lag,"
            "failover,readmodels (the ceiling always runs: every figure is a ratio to it)."
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
    DAG, a master's rebuild of 100,000 events, projection lag, the projector's sustained rate
    and the read-model queries over 200,000 instances (a million with --full). Starts the
    local stack unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set."""
    from infra.bench import BenchOptions, failed_sections, run_bench

    if quick and full:
        raise fail("--quick and --full exclude each other", 2)
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
        raise fail(str(exc), 2) from exc
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
    cli_main(lambda: compose.service(load_settings()))


if __name__ == "__main__":
    main()
