"""The chaos report: what ran, what was broken on purpose, how the system recovered, and every
invariant violation with its event evidence (rich tables)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from streams.core.events import CommandRejected, TaskFailed, TaskFailedOver

if TYPE_CHECKING:
    from infra.chaos.outcome import ChaosOutcome

MAX_VIOLATIONS_SHOWN = 40


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    return table


def stopping_worker_failures(outcome: ChaosOutcome) -> int:
    """Attempts a worker reported FAILURE because it was stopping (SIGTERM drain)."""
    if outcome.result is None:
        return 0
    marks = ("is stopping", "stopped before this attempt started", "killed: worker")
    return sum(
        1
        for r in outcome.result.log.events_of(TaskFailed)
        if any(m in r.event.output for m in marks)
    )


def print_report(outcome: ChaosOutcome, console: Console) -> None:
    o = outcome.options
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in outcome.phases.items())
    console.rule(f"tideflow chaos: seed {o.seed}, {o.duration_s:.0f}s of faults")
    console.print(
        f"{o.masters} masters, {o.workers} workers, {o.partitions} partitions; "
        f"worker timeout {o.worker_timeout_s:g}s, heartbeat {o.heartbeat_interval_s:g}s, "
        f"session {o.session_timeout_ms} ms, ack timeout {o.dispatch_ack_timeout_s:g}s"
    )
    console.print(
        f"{outcome.deployment}\nphases: {phases}\nlogs and run journal: {outcome.workdir}"
    )
    result = outcome.result
    if result is None:
        console.print("[red]no check was made[/red]")
        return
    log = result.log

    states: Counter[str] = Counter()
    for iid in outcome.started:
        s = log.state(iid).state
        states["never started" if s is None else s.name] += 1
    t = _table("instances by final state (fold of the log)", "state", "instances")
    for name, n in states.most_common():
        t.add_row(name, str(n))
    t.add_row("[bold]started[/bold]", str(len(outcome.started)))
    t.add_row("controls sent (pause/stop/resume)", str(outcome.controls))
    attempts = sum(1 for a in log.attempts.values() if a.dispatched)
    t.add_row("task attempts dispatched", str(attempts))
    console.print(t)

    t = _table("faults injected", "kind", "count")
    for kind, n in sorted(Counter(f.kind for f in outcome.faults).items()):
        t.add_row(kind, str(n))
    t.add_row("planned, not injected (no eligible target / phase over)", str(len(outcome.skipped)))
    t.add_row("processes that exited on their own", str(len(outcome.crashes)))
    console.print(t)

    t = _table("failovers (from the log)", "fact", "count")
    overs = log.events_of(TaskFailedOver)
    reasons = Counter(
        "dispatch not acknowledged"
        if "not acknowledged" in r.event.reason
        else "worker restarted"
        if "restarted" in r.event.reason
        else "worker lost (timeout)"
        for r in overs
    )
    t.add_row("TaskFailedOver", str(len(overs)))
    for reason, n in sorted(reasons.items()):
        t.add_row(f"  {reason}", str(n))
    t.add_row("WorkerLost", str(len(log.lost_workers)))
    t.add_row("PartitionTakenOver", str(len(log.takeovers)))
    t.add_row("events fenced (older owner epoch)", str(len(log.fenced)))
    used = outcome.snapshot_takeovers
    t.add_row(
        "takeovers rebuilt from a snapshot (master logs)",
        f"{used.get('used', 0)} of {sum(used.values())}",
    )
    t.add_row(
        "attempts failed by a stopping worker (SIGTERM drain)",
        str(stopping_worker_failures(outcome)),
    )
    console.print(t)

    t = _table(
        "bad input: where each ended", "kind", "sent", "dead-lettered", "rejected", "nowhere"
    )
    by_kind: dict[str, Counter[str]] = {}
    for b in result.bad_inputs:
        c = by_kind.setdefault(b.item.kind, Counter())
        c["sent"] += 1
        c["dead" if b.ended == "dead-letter" else "nowhere" if b.ended == "nowhere" else "rej"] += 1
    for kind, c in sorted(by_kind.items()):
        t.add_row(kind, str(c["sent"]), str(c["dead"]), str(c["rej"]), str(c["nowhere"]))
    console.print(t)
    t = _table("CommandRejected by command and reason", "command", "reason", "bad input", "other")
    bad_ids = {b.item.command_id for b in result.bad_inputs if b.item.command_id}
    rejected: Counter[tuple[str, str, bool]] = Counter()
    for r in log.events_of(CommandRejected):
        e = r.event
        rejected[(e.command_type, e.reason.name, e.command_id in bad_ids)] += 1
    for command, reason in sorted({(c, r) for c, r, _ in rejected}):
        t.add_row(
            command,
            reason,
            str(rejected[(command, reason, True)]),
            str(rejected[(command, reason, False)]),
        )
    console.print(t)
    copies = sum(b.copies for b in result.bad_inputs if b.ended == "dead-letter")
    console.print(
        f"dead-letter records for bad input: {copies} "
        f"({len(log.undecodable)} undecodable records in the events log)"
    )

    t = _table("failover times (kill -> event `at`)", "measure", "n", "p50", "max", "none seen")
    for timing in outcome.timings:
        t.add_row(
            timing.label,
            str(len(timing.samples)),
            _s(timing.p50),
            _s(timing.max),
            str(timing.missing),
        )
    console.print(t)

    for note in outcome.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if not outcome.violations:
        console.print("[green bold]every invariant held[/green bold]")
        return
    counts = Counter(v.invariant for v in outcome.violations)
    console.print(
        f"[red bold]{len(outcome.violations)} violations[/red bold]: "
        + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
    )
    for v in outcome.violations[:MAX_VIOLATIONS_SHOWN]:
        console.print(v.render(), markup=False, highlight=False)
    if len(outcome.violations) > MAX_VIOLATIONS_SHOWN:
        console.print(f"... {len(outcome.violations) - MAX_VIOLATIONS_SHOWN} more")
