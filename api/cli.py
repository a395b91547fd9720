"""The `tideflow` command's operations on workflows and instances, over the same `Service` as
the HTTP API. The commands that run roles and the local stack are added by `infra.cli`, which
also supplies the `Service` (this layer never reads the environment).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.backfill_cli import add_backfill_commands
from api.definitions import load_file
from api.schedule_cli import add_schedule_commands
from api.service import InvalidParams, InvalidStartNodes, NotFound, Service
from api.time_travel import InvalidPoint, Point
from projections.pages import Page
from streams.core.cron import InvalidCron, parse_cron
from streams.core.definition import InvalidDefinition, chosen, runnable
from streams.core.enums import Priority, TaskDependType, WorkflowState
from streams.core.errors import TideflowError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="tideflow: register, run and operate workflows; run its roles and the local stack.",
)
workflow_app = typer.Typer(no_args_is_help=True, help="Workflow definitions.")
app.add_typer(workflow_app, name="workflow")
schedule_app = typer.Typer(no_args_is_help=True, help="Cron schedules.")
app.add_typer(schedule_app, name="schedule")
backfill_app = typer.Typer(no_args_is_help=True, help="Backfills (complement data).")
app.add_typer(backfill_app, name="backfill")
# Not a terminal (CI logs, pipes): wide enough that the task and event tables stay readable.
console = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


def _service(ctx: typer.Context) -> Service:
    """The `Service` built by the factory `main` was given (the composition root's)."""
    services: Callable[[], Service] = ctx.find_root().obj
    return services()


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


# -- workflows ---------------------------------------------------------------------------------


@workflow_app.command("apply")
def workflow_apply(ctx: typer.Context, file: Path) -> None:
    """Validate FILE (YAML or JSON) and register it as the workflow's next version."""
    try:
        workflow = load_file(file)
    except InvalidDefinition as exc:
        err.print(f"[red]invalid workflow definition[/red] {file}:")
        for problem in exc.problems:
            err.print(f"  - {problem}")
        raise typer.Exit(2) from exc
    result = _service(ctx).register(workflow, by="cli")
    verb = "registered" if result.created else "unchanged, already"
    console.print(f"{result.code}: {verb} version {result.version}")


@workflow_app.command("list")
def workflow_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    cursor: Annotated[str | None, typer.Option(help="continue after a page")] = None,
) -> None:
    """Registered definitions (latest version of each), by code."""
    page = _service(ctx).definition_page(limit, cursor)
    _print_page(page, ["code", "version", "description", "registered_at"])


@app.command()
def workers(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    cursor: Annotated[str | None, typer.Option(help="continue after a page")] = None,
) -> None:
    """Workers by group, with their slots and latest heartbeat."""
    page = _service(ctx).worker_page(limit, cursor)
    _print_page(
        page,
        ["worker_id", "worker_group", "host", "slots_total", "slots_free", "last_heartbeat_at"],
    )


@schedule_app.command("preview")
def schedule_preview(
    cron: Annotated[str, typer.Argument(help="Quartz ('0 0 2 * * ? *') or Unix ('0 2 * * *')")],
    tz: Annotated[str, typer.Option("--tz", help="IANA timezone of the schedule")] = "UTC",
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=1000)] = 5,
    after: Annotated[
        datetime | None, typer.Option(help="start after this time (default: now), in --tz")
    ] = None,
) -> None:
    """The next fire times of CRON in its timezone (nothing is registered or started)."""
    try:
        parsed = parse_cron(cron, tz)
    except InvalidCron as exc:
        err.print(f"[red]invalid schedule[/red] {cron!r}:")
        for problem in exc.problems:
            err.print(f"  - {problem}")
        raise typer.Exit(2) from exc
    start = datetime.now(UTC) if after is None else after
    start = start if start.tzinfo else start.replace(tzinfo=parsed.zone)
    for at in parsed.fire_times(start, limit=count):
        console.print(at.isoformat())


add_schedule_commands(schedule_app, _service, console, err)
add_backfill_commands(backfill_app, _service, console, err)

# -- runs --------------------------------------------------------------------------------------


@app.command()
def run(
    ctx: typer.Context,
    code: str,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="k=v")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the end, showing progress")] = False,
    version: int | None = None,
    timeout: float = 600.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="orchestrate fully; workers run nothing")
    ] = False,
    start_node: Annotated[
        list[str] | None,
        typer.Option("--start-node", help="a task to start from (repeat for several)"),
    ] = None,
    scope: Annotated[
        str, typer.Option(help="with --start-node: TASK_ONLY, TASK_PRE (+ upstream), TASK_POST")
    ] = TaskDependType.TASK_POST.name,
    priority: Annotated[
        str, typer.Option(help="HIGHEST .. LOWEST: order among instances waiting for slots")
    ] = Priority.MEDIUM.name,
) -> None:
    """Start an instance of workflow CODE; prints its id (and waits with --wait). With
    --start-node, only the chosen tasks run: see --scope."""
    params = dict(p.split("=", 1) for p in (param or []) if "=" in p)
    if scope.upper() not in TaskDependType.__members__:
        choices = ", ".join(TaskDependType.__members__)
        raise fail(f"--scope: expected one of {choices}, found {scope!r}", 2)
    if priority.upper() not in Priority.__members__:
        choices = ", ".join(Priority.__members__)
        raise fail(f"--priority: expected one of {choices}, found {priority!r}", 2)
    depend = TaskDependType[scope.upper()]
    nodes = tuple(start_node or ())
    service = _service(ctx)
    try:
        started = service.start(
            code, params, version=version, by="cli", dry_run=dry_run, start_nodes=nodes,
            scope=depend, priority=Priority[priority.upper()],
        )  # fmt: skip
    except (InvalidParams, InvalidStartNodes) as exc:
        what = "invalid parameters" if isinstance(exc, InvalidParams) else "invalid start nodes"
        why = " (they could change how tasks run)" if isinstance(exc, InvalidParams) else ""
        err.print(f"[red]{what}[/red]{why}:")
        for problem in exc.problems:
            err.print(f"  - {problem}", markup=False, highlight=False)
        raise typer.Exit(2) from exc
    except NotFound as exc:
        raise fail(str(exc)) from exc
    console.print(f"instance {started['instance_id']}")
    if wait:
        chosen_tasks = chosen(service.definition(code, version), nodes, depend)
        total = len(runnable(chosen_tasks).tasks)  # disabled or outside the scope: never run
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
def status(ctx: typer.Context, instance_id: str) -> None:
    """An instance and its tasks (latest attempt of each)."""
    try:
        found = _service(ctx).instance(instance_id)
    except NotFound as exc:
        raise fail(str(exc)) from exc
    print_instance(found)


@app.command()
def history(
    ctx: typer.Context,
    instance_id: str,
    at: Annotated[
        str | None,
        typer.Option(help="time travel: the instance as of an events offset or an ISO time"),
    ] = None,
) -> None:
    """Every event of an instance, in log order; with --at, the instance as it was then,
    folded from the events log."""
    if at is None:
        print_history(_service(ctx).history(instance_id))
        return
    try:
        found = _service(ctx).instance_at(instance_id, Point.parse(at))
    except (InvalidPoint, NotFound) as exc:
        raise fail(str(exc), 2 if isinstance(exc, InvalidPoint) else 1) from exc
    as_of = found["as_of"]
    console.print(f"as of events[{as_of['partition']}]@{as_of['offset']} ({as_of['at']})")
    print_instance({**found, "tasks": found["attempts"]}, title="task attempts (from the log)")
    for r in found["requests"]:
        console.print(f"  {r['event_type']} requested by {r['requested_by']} at {r['at']}")
    _print_rows(found["events"], ["offset", "at", "event_type", "cause"])


Since = Annotated[datetime | None, typer.Option(help="started at or after (ISO; UTC if naive)")]
Until = Annotated[datetime | None, typer.Option(help="started before (ISO; UTC if naive)")]
CursorOpt = Annotated[str | None, typer.Option(help="continue after a page (its next cursor)")]


def _utc(at: datetime | None) -> datetime | None:
    return at if at is None or at.tzinfo else at.replace(tzinfo=UTC)


@app.command("instances")
def list_instances(
    ctx: typer.Context,
    workflow: str | None = None,
    state: str | None = None,
    requested_by: Annotated[str | None, typer.Option(help="who started it")] = None,
    worker: Annotated[str | None, typer.Option(help="a worker ran one of its attempts")] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    cursor: CursorOpt = None,
) -> None:
    """Instances, newest first; every filter narrows the list."""
    page = _service(ctx).instance_page(
        workflow_code=workflow, state=state, requested_by=requested_by, worker_id=worker,
        since=_utc(since), until=_utc(until), limit=limit, cursor=cursor,
    )  # fmt: skip
    _print_page(
        page,
        ["instance_id", "workflow_code", "workflow_version", "state", "started_at", "ended_at"],
    )


@app.command("rejections")
def list_rejections(
    ctx: typer.Context,
    instance: Annotated[str | None, typer.Option(help="of one instance")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    cursor: CursorOpt = None,
) -> None:
    """Refused commands (CommandRejected), newest first."""
    page = _service(ctx).rejections(instance, limit, cursor)
    _print_page(page, ["at", "instance_id", "command_type", "reason", "message"])


@app.command("stats")
def show_stats(
    ctx: typer.Context,
    workflow: str | None = None,
    since: Since = None,
    until: Until = None,
) -> None:
    """Instances by state and day, failure rates per workflow, task durations and retries."""
    found = _service(ctx).stats(workflow, _utc(since), _utc(until))
    console.print(f"{found['instances']} instances")
    _print_rows(
        [{"state": k, "instances": v} for k, v in found["by_state"].items()],
        ["state", "instances"],
        title="by state",
    )
    _print_rows(found["by_day"], ["day", "state", "instances"], title="by day (UTC)")
    _print_rows(
        found["workflows"],
        ["workflow_code", "instances", "succeeded", "failed", "failure_rate",
         "duration_p50_s", "duration_p95_s"],
        title="workflows",
    )  # fmt: skip
    _print_rows(
        found["tasks"],
        ["workflow_code", "task_code", "attempts", "retries", "failed_attempts",
         "duration_p50_s", "duration_p95_s", "duration_max_s"],
        title="tasks",
    )  # fmt: skip
    _print_rows(
        found["schedules"],
        ["workflow_code", "scheduled_instances", "fire_to_start_p50_s", "fire_to_start_p95_s",
         "fire_to_start_max_s"],
        title="scheduled runs: fire time -> start",
    )  # fmt: skip


def _control(ctx: typer.Context, action: str, instance_id: str) -> None:
    try:
        _service(ctx).control(instance_id, action)
    except NotFound as exc:
        raise fail(str(exc)) from exc
    console.print(f"{action} requested for {instance_id}")


@app.command()
def pause(ctx: typer.Context, instance_id: str) -> None:
    """Pause: running tasks finish, nothing new starts."""
    _control(ctx, "pause", instance_id)


@app.command()
def stop(ctx: typer.Context, instance_id: str) -> None:
    """Stop: running tasks are killed."""
    _control(ctx, "stop", instance_id)


@app.command()
def resume(ctx: typer.Context, instance_id: str) -> None:
    """Resume a paused, stopped or failed instance: unfinished tasks run again."""
    _control(ctx, "resume", instance_id)


@app.command()
def rerun(ctx: typer.Context, instance_id: str) -> None:
    """Rerun a finished instance (REPEAT_RUNNING): the whole DAG again, same instance id;
    earlier attempts stay, marked not valid."""
    _control(ctx, "rerun", instance_id)


def _task_control(ctx: typer.Context, action: str, instance_id: str, task_code: str) -> None:
    service = _service(ctx)
    try:
        service.instance(instance_id)  # an unknown instance is an error here, not a refusal
        service.task_control(instance_id, task_code, action)
    except NotFound as exc:
        raise fail(str(exc)) from exc
    console.print(f"{action} requested for task {task_code} of {instance_id}")


@app.command("force-success")
def force_success(ctx: typer.Context, instance_id: str, task_code: str) -> None:
    """Force a FAILURE or KILL task of a finished instance to FORCED_SUCCESS (the instance
    succeeds if it was the last task not succeeded)."""
    _task_control(ctx, "force-success", instance_id, task_code)


@app.command("stop-task")
def stop_task(ctx: typer.Context, instance_id: str, task_code: str) -> None:
    """Kill one running task; the instance goes on (it ends FAILURE, as after any KILL)."""
    _task_control(ctx, "stop", instance_id, task_code)


@app.command("execute-tasks")
def execute_tasks(
    ctx: typer.Context,
    instance_id: str,
    start_node: Annotated[
        list[str], typer.Option("--start-node", help="a task to run again (repeat for several)")
    ],
    scope: Annotated[
        str, typer.Option(help="TASK_ONLY, TASK_PRE (+ upstream), TASK_POST (+ downstream)")
    ] = TaskDependType.TASK_POST.name,
) -> None:
    """Run chosen tasks of a SUCCESS or FAILURE instance again inside it (EXECUTE_TASK)."""
    if scope.upper() not in TaskDependType.__members__:
        choices = ", ".join(TaskDependType.__members__)
        raise fail(f"--scope: expected one of {choices}, found {scope!r}", 2)
    service = _service(ctx)
    try:
        service.instance(instance_id)  # an unknown instance is an error here, not a refusal
        service.execute_tasks(instance_id, start_node, TaskDependType[scope.upper()])
    except NotFound as exc:
        raise fail(str(exc)) from exc
    console.print(f"execute-tasks requested for {', '.join(start_node)} of {instance_id}")


# -- printing ----------------------------------------------------------------------------------


def _print_rows(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    console.print(table)


def _print_page(page: Page, columns: list[str]) -> None:
    _print_rows(page.rows, columns)
    if page.next_cursor is not None:
        console.print(f"more: --cursor {page.next_cursor}")


def _clock(value: Any) -> str:
    """HH:MM:SS.mmm of an ISO timestamp (the date is in the instance line)."""
    text = str(value or "")
    return text[11:23] if len(text) >= 23 else text


def print_instance(
    found: dict[str, Any], title: str = "task instances (PostgreSQL), every attempt"
) -> None:
    console.print(
        f"instance {found['instance_id']}  workflow {found['workflow_code']} "
        f"v{found['workflow_version']}  state [bold]{found['state']}[/bold] ({found['state_code']})"
        f"  started {found.get('started_at')}"
    )
    if found.get("failure_reason"):
        console.print(f"  {found['failure_reason']}")
    table = Table(title=title)
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


def main(services: Callable[[], Service]) -> None:
    """Run the CLI; `services` builds the `Service` the commands use (the composition root's)."""
    try:
        app(obj=services)
    except TideflowError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
