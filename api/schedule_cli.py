"""`tideflow schedule create|update|online|offline|delete|list|fires` (preview is in
`api.cli`). Each write checks what it can before sending (exit 2 naming every problem), then
waits a few seconds for the scheduler's decision and prints it: accepted, or refused with
its reason (exit 1); undecided in time, it says so (the command stays queued).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.schedules import ScheduleOps
from api.service import NotFound, Service
from projections.pages import Page
from streams.core.schedules.spec import InvalidSchedule

WAIT_S = 10.0
_o = typer.Option  # short, for the many options below

Services = Callable[[typer.Context], Service]


def _pairs(values: list[str] | None) -> dict[str, str]:
    out = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected NAME=VALUE, found {item!r}")
        out[name] = value
    return out


def add_schedule_commands(schedule_app: typer.Typer, services: Services, out: Console,
                          err: Console) -> None:  # fmt: skip
    def ops(ctx: typer.Context) -> ScheduleOps:
        return ScheduleOps(services(ctx))

    def report(o: ScheduleOps, sent: dict[str, str], what: str, wait: float) -> None:
        outcome = o.outcome(sent["command_id"], wait) if wait > 0 else None
        if outcome is None:
            out.print(f"{what} {sent['schedule_id']}: sent ({sent['command_id']})")
            if wait > 0:
                out.print("  not decided yet: is a scheduler running? (`tideflow scheduler`)")
            return
        if not outcome["accepted"]:
            err.print(f"[red]refused[/red] {what} {sent['schedule_id']}: "
                      f"{outcome['reason']}: {outcome['message']}")  # fmt: skip
            raise typer.Exit(1)
        out.print(f"{what} {sent['schedule_id']}: done ({outcome['event_type']})")

    def invalid(exc: InvalidSchedule) -> typer.Exit:
        err.print("[red]invalid schedule[/red]:")
        for problem in exc.problems:
            err.print(f"  - {problem}")
        return typer.Exit(2)

    def fields(
        workflow: str | None, cron: str | None, tz: str | None, start: str | None,
        end: str | None, misfire: str | None, catch_up: str | None,
        failure_strategy: str | None, priority: str | None, worker_group: str | None,
        warning_type: str | None, warning_group: int | None, param: list[str] | None,
    ) -> dict[str, Any]:  # fmt: skip
        given = {
            "workflow_code": workflow, "cron": cron, "timezone": tz, "start_time": start,
            "end_time": end, "misfire": misfire, "catch_up_window_s": catch_up,
            "failure_strategy": failure_strategy, "workflow_priority": priority,
            "worker_group": worker_group, "warning_type": warning_type,
            "warning_group_id": warning_group, "params": _pairs(param) if param else None,
        }  # fmt: skip
        return {k: v for k, v in given.items() if v is not None}

    @schedule_app.command("create")
    def create(
        ctx: typer.Context,
        schedule_id: Annotated[str, typer.Argument(help="the schedule's id")],
        workflow: Annotated[str, _o("--workflow", "-w", help="workflow code")],
        cron: Annotated[str, _o(help="Quartz '0 0 2 * * ? *' or Unix '0 2 * * *'")],
        tz: Annotated[str | None, _o("--tz", help="IANA timezone (default UTC)")] = None,
        start: Annotated[str | None, _o(help="ISO 8601 start (in --tz without offset)")] = None,
        end: Annotated[str | None, _o(help="ISO 8601 end (in --tz without offset)")] = None,
        misfire: Annotated[str | None, _o(help="ALL (default) or LATEST")] = None,
        catch_up: Annotated[str | None, _o(help="catch-up window: 3600, 1h (default 1h)")] = None,
        failure_strategy: Annotated[str | None, _o(help="CONTINUE or END")] = None,
        priority: Annotated[str | None, _o(help="workflow priority HIGHEST..LOWEST")] = None,
        worker_group: Annotated[str | None, _o(help="for tasks in the default group")] = None,
        warning_type: Annotated[str | None, _o(help="NONE, SUCCESS, FAILURE, ALL")] = None,
        warning_group: Annotated[int | None, _o(help="alert group id")] = None,
        param: Annotated[list[str] | None, _o("--param", "-p", help="k=v")] = None,
        online: Annotated[bool, _o("--online", help="bring it online at once")] = False,
        wait: Annotated[float, _o(help="seconds to wait for the decision")] = WAIT_S,
    ) -> None:
        """Create a schedule of a registered workflow (OFFLINE unless --online)."""
        o = ops(ctx)
        raw = fields(workflow, cron, tz, start, end, misfire, catch_up, failure_strategy,
                     priority, worker_group, warning_type, warning_group, param)  # fmt: skip
        try:
            sent = o.create(raw, schedule_id, online=online, by="cli")
        except InvalidSchedule as exc:
            raise invalid(exc) from exc
        except NotFound as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        report(o, sent, "create", wait)

    @schedule_app.command("update")
    def update(
        ctx: typer.Context,
        schedule_id: str,
        workflow: Annotated[str | None, _o("--workflow", "-w")] = None,
        cron: Annotated[str | None, _o()] = None,
        tz: Annotated[str | None, _o("--tz")] = None,
        start: Annotated[str | None, _o()] = None,
        end: Annotated[str | None, _o()] = None,
        misfire: Annotated[str | None, _o()] = None,
        catch_up: Annotated[str | None, _o()] = None,
        failure_strategy: Annotated[str | None, _o()] = None,
        priority: Annotated[str | None, _o()] = None,
        worker_group: Annotated[str | None, _o()] = None,
        warning_type: Annotated[str | None, _o()] = None,
        warning_group: Annotated[int | None, _o()] = None,
        param: Annotated[list[str] | None, _o("--param", "-p", help="k=v (replaces all)")] = None,
        wait: Annotated[float, _o()] = WAIT_S,
    ) -> None:
        """Change an OFFLINE schedule: only the options given change."""
        o = ops(ctx)
        raw = fields(workflow, cron, tz, start, end, misfire, catch_up, failure_strategy,
                     priority, worker_group, warning_type, warning_group, param)  # fmt: skip
        try:
            sent = o.update(schedule_id, raw, by="cli")
        except InvalidSchedule as exc:
            raise invalid(exc) from exc
        except NotFound as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        report(o, sent, "update", wait)

    def action(name: str, doc: str) -> None:
        def run(
            ctx: typer.Context,
            schedule_id: str,
            wait: Annotated[float, _o(help="seconds to wait for the decision")] = WAIT_S,
        ) -> None:
            o = ops(ctx)
            try:
                sent = o.act(schedule_id, name)
            except NotFound as exc:
                err.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(1) from exc
            report(o, sent, name, wait)

        run.__doc__ = doc
        schedule_app.command(name)(run)

    action("online", "Bring a schedule online: it fires from now on (nothing in the past).")
    action("offline", "Take a schedule offline: it stops firing.")
    action("delete", "Delete an OFFLINE schedule for good.")

    @schedule_app.command("list")
    def list_(
        ctx: typer.Context,
        workflow: Annotated[str | None, _o("--workflow", "-w")] = None,
        limit: Annotated[int, _o(min=1, max=1000)] = 100,
        cursor: Annotated[str | None, _o(help="continue after a page")] = None,
    ) -> None:
        """Schedules with their state, last and next fire time."""
        page = ops(ctx).schedules(workflow, limit, cursor)
        columns = ["schedule_id", "workflow_code", "cron", "timezone", "release_state", "fires",
                   "last_fire_time", "next_fire_time"]  # fmt: skip
        _table(out, page, columns)

    @schedule_app.command("fires")
    def fires(
        ctx: typer.Context,
        schedule_id: str,
        limit: Annotated[int, _o("-n", min=1, max=1000)] = 20,
        cursor: Annotated[str | None, _o(help="continue after a page")] = None,
    ) -> None:
        """A schedule's fire history, newest first: fire time, lateness, instance, state."""
        try:
            rows = ops(ctx).fires(schedule_id, limit, cursor)
        except NotFound as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        _table(out, rows, ["fire_time", "fired_at", "lateness_s", "instance_id", "state"])


def _table(out: Console, page: Page, columns: list[str]) -> None:
    table = Table()
    for c in columns:
        table.add_column(c)
    for r in page.rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    out.print(table)
    if page.next_cursor is not None:
        out.print(f"more: --cursor {page.next_cursor}")
