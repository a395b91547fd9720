"""`tideflow backfill create|status|stop`. A create checks what it can before sending (exit 2
naming every problem), then waits a few seconds for the scheduler's decision and prints it:
accepted, or refused with its reason (exit 1); undecided in time, it says so (the command
stays queued). `status` prints the backfill's progress and a row per date.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.backfills import BackfillOps
from api.schedule_cli import _pairs
from api.service import NotFound, Service
from streams.core.schedules.backfill import InvalidBackfill

WAIT_S = 10.0
_o = typer.Option

Services = Callable[[typer.Context], Service]


def add_backfill_commands(
    backfill_app: typer.Typer, services: Services, out: Console, err: Console
) -> None:
    def ops(ctx: typer.Context) -> BackfillOps:
        return BackfillOps(services(ctx))

    def report(o: BackfillOps, sent: dict[str, str], what: str, wait: float) -> None:
        outcome = o.outcome(sent["command_id"], wait) if wait > 0 else None
        if outcome is None:
            out.print(f"{what} {sent['backfill_id']}: sent ({sent['command_id']})")
            if wait > 0:
                out.print("  not decided yet: is a scheduler running? (`tideflow scheduler`)")
            return
        if not outcome["accepted"]:
            err.print(
                f"[red]refused[/red] {what} {sent['backfill_id']}: "
                f"{outcome['reason']}: {outcome['message']}"
            )
            raise typer.Exit(1)
        out.print(f"{what} {sent['backfill_id']}: done ({outcome['event_type']})")

    @backfill_app.command("create")
    def create(
        ctx: typer.Context,
        workflow: Annotated[str, typer.Argument(help="workflow code")],
        start: Annotated[str | None, _o(help="range start, ISO 8601 (inclusive)")] = None,
        end: Annotated[str | None, _o(help="range end, ISO 8601 (inclusive)")] = None,
        date: Annotated[
            list[str] | None, _o("--date", "-d", help="a date (repeat; <= 100)")
        ] = None,
        cron: Annotated[
            list[str] | None, _o(help="expand by this cron (default: the online schedules')")
        ] = None,
        tz: Annotated[
            str | None, _o("--tz", help="timezone of --cron and of dates without offset")
        ] = None,
        order: Annotated[str | None, _o(help="ASC or DESC (default)")] = None,
        mode: Annotated[str | None, _o(help="SERIAL (default) or PARALLEL")] = None,
        parallelism: Annotated[
            int | None, _o("--parallelism", "-n", help="PARALLEL: at once")
        ] = None,
        failure_strategy: Annotated[str | None, _o(help="CONTINUE or END")] = None,
        priority: Annotated[str | None, _o(help="workflow priority HIGHEST..LOWEST")] = None,
        worker_group: Annotated[str | None, _o(help="for tasks in the default group")] = None,
        param: Annotated[list[str] | None, _o("--param", "-p", help="k=v")] = None,
        backfill_id: Annotated[
            str | None, _o("--id", help="the backfill's id (default a UUID)")
        ] = None,
        wait: Annotated[float, _o(help="seconds to wait for the decision")] = WAIT_S,
    ) -> None:
        """Backfill a workflow over a range (--start/--end) or dates (--date ...)."""
        given: dict[str, Any] = {
            "workflow_code": workflow,
            "start_date": start,
            "end_date": end,
            "dates": date,
            "crons": [{"cron": c, "timezone": tz or "UTC"} for c in cron] if cron else None,
            "timezone": tz,
            "order": order,
            "run_mode": mode,
            "parallelism": parallelism,
            "failure_strategy": failure_strategy,
            "workflow_priority": priority,
            "worker_group": worker_group,
            "params": _pairs(param) if param else None,
        }
        o = ops(ctx)
        try:
            sent = o.create({k: v for k, v in given.items() if v is not None}, backfill_id, "cli")
        except InvalidBackfill as exc:
            err.print("[red]invalid backfill[/red]:")
            for problem in exc.problems:
                err.print(f"  - {problem}")
            raise typer.Exit(2) from exc
        except NotFound as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        report(o, sent, "backfill", wait)

    @backfill_app.command("status")
    def status(ctx: typer.Context, backfill_id: str) -> None:
        """A backfill's state and progress, and each date's instance and state."""
        try:
            b = ops(ctx).backfill(backfill_id)
        except NotFound as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        out.print(
            f"backfill {b['backfill_id']} of {b['workflow_code']}: {b['state']} "
            f"({b['run_mode']}, {b['execution_order']}, parallelism {b['parallelism']}); "
            f"{b['dates_started']}/{b['dates_total']} started, {b['dates_succeeded']} "
            f"succeeded, {b['dates_failed']} failed"
        )
        table = Table()
        columns = ["date", "state", "instance_id", "instance_state", "started_at", "ended_at"]
        for c in columns:
            table.add_column(c)
        for r in b["dates"]:
            table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
        out.print(table)

    @backfill_app.command("stop")
    def stop(
        ctx: typer.Context,
        backfill_id: str,
        wait: Annotated[float, _o(help="seconds to wait for the decision")] = WAIT_S,
    ) -> None:
        """Stop a backfill: no date starts any more; running instances run to their end."""
        o = ops(ctx)
        try:
            sent = o.stop(backfill_id)
        except NotFound as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        report(o, sent, "stop", wait)
