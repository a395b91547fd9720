"""The figures of a run: ratios to the ceiling, the table printed at the end, the JSON file.

Ratios: a latency divided by the ceiling's two-hop round trip p50 ("x round trips"); a rate
divided by the ceiling's processor loop records/s (consume, produce 2, commit per batch:
the master's shape) or, for the rebuild, by the pipe's records/s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra.bench.stats import ratio


def _get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def add_ratios(results: dict[str, Any]) -> None:
    """Fill `ratio` in every section from the ceiling's figures (null when not measured)."""
    rtt = _get(results, "ceiling.round_trip_ms.p50")
    proc = _get(results, "ceiling.processor_records_per_s")
    pipe = _get(results, "ceiling.pipe_records_per_s")

    def lat(section: str, *paths: str) -> None:
        node = results.get(section)
        if isinstance(node, dict) and "error" not in node:
            node["ratio"] = {p: ratio(_get(node, p), rtt) for p in paths}

    for section in ("chain", "chain_shell"):
        lat(section, "e2e_ms.p50", "e2e_ms.p95", "step_ms.p50", "step_ms.p95")
    lat("wide", "e2e_ms")
    lat("lag", "p50", "p95")
    lat("lag_2_masters", "p50", "p95")
    for key in ("throughput_1_master", "throughput_2_masters"):
        node = results.get(key)
        if isinstance(node, dict) and "error" not in node:
            node["ratio"] = {
                "tasks_per_s": ratio(node.get("tasks_per_s"), proc, 4),
                "records_per_s": ratio(node.get("records_per_s"), proc, 3),
            }
    node = results.get("wide")
    if isinstance(node, dict) and "error" not in node:
        node["ratio"]["tasks_per_s"] = ratio(node.get("tasks_per_s"), proc, 4)
    node = results.get("recovery")
    if isinstance(node, dict) and "error" not in node:
        node["ratio"] = {"events_per_s": ratio(node.get("events_per_s"), pipe, 3)}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".rstrip()


def _x(value: Any) -> str:
    return "-" if value is None else f"{value:g}x"


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, value, ratio to the ceiling, note) for the table."""
    out: list[tuple[str, str, str, str]] = []
    c = results.get("ceiling") or {}
    if c:
        rtt = c.get("round_trip_ms") or {}
        out += [
            ("ceiling: two-hop round trip", f"p50 {_fmt(rtt.get('p50'), 'ms')}  "
             f"p99 {_fmt(rtt.get('p99'), 'ms')}", "1x", f"n={rtt.get('n')}"),
            ("ceiling: pipe (produce -> consume)", _fmt(c.get("pipe_records_per_s"), "rec/s"),
             "", f"{c.get('payload_bytes')} B records"),
            ("ceiling: processor (consume, produce 2, commit)",
             _fmt(c.get("processor_records_per_s"), "rec/s"), "1x", "the master's loop shape"),
        ]  # fmt: skip
    for key, label in (("chain", "chain, noop"), ("chain_shell", "chain, shell `true`")):
        node = results.get(key)
        if not node:
            continue
        if "error" in node:
            out.append((label, "error", "", str(node["error"])[:80]))
            continue
        r = node.get("ratio") or {}
        e2e, step = node.get("e2e_ms") or {}, node.get("step_ms") or {}
        out += [
            (f"{label}: start -> WorkflowSucceeded",
             f"p50 {_fmt(e2e.get('p50'), 'ms')}  p95 {_fmt(e2e.get('p95'), 'ms')}",
             f"{_x(r.get('e2e_ms.p50'))} / {_x(r.get('e2e_ms.p95'))}",
             f"{node.get('runs')} runs x {node.get('tasks')} tasks"),
            (f"{label}: step (task N finished -> N+1 started)",
             f"p50 {_fmt(step.get('p50'), 'ms')}  p95 {_fmt(step.get('p95'), 'ms')}",
             f"{_x(r.get('step_ms.p50'))} / {_x(r.get('step_ms.p95'))}",
             f"master clock: p50 {_fmt((node.get('step_master_ms') or {}).get('p50'), 'ms')}"),
        ]  # fmt: skip
    for key, label in (("throughput_1_master", "1 master"), ("throughput_2_masters", "2 masters")):
        node = results.get(key)
        if not node:
            continue
        if "error" in node:
            out.append((f"throughput, {label}", "error", "", str(node["error"])[:80]))
            continue
        r = node.get("ratio") or {}
        if node.get("complete") is False:
            why = "stalled" if node.get("stalled") else "timed out"
            out.append(
                (f"throughput, {label}: INCOMPLETE ({why})",
                 f"{node.get('not_ended'):,} of {node.get('instances'):,} not ended", "",
                 f"{node.get('tasks_succeeded'):,} tasks succeeded; see record_kinds, "
                 "log_warnings in the JSON")
            )  # fmt: skip
        out.append(
            (f"throughput, {label}: completed tasks/s",
             f"{_fmt(node.get('tasks_per_s'))}  (steady {_fmt(node.get('steady_tasks_per_s'))})",
             _x(r.get("tasks_per_s")),
             f"{node.get('instances'):,} x 10 tasks in {_fmt(node.get('elapsed_s'), 's')}; "
             f"{_fmt(node.get('records_per_s'))} rec/s ({_x(r.get('records_per_s'))})")
        )  # fmt: skip
    node = results.get("second_master")
    if node:
        cpu = node.get("master_cpu_s_per_1k_tasks") or {}
        change = node.get("tasks_per_s_change_pct")
        out.append(
            ("throughput: what the second master adds",
             "-" if change is None else f"{change:+.1f}% tasks/s", "",
             f"broker idle CPU {node.get('idle_broker_cpu_added_pct'):+}% of a core, its own "
             f"idle {node.get('idle_cpu_of_the_second_pct')}%; masters' CPU per 1,000 tasks "
             f"{_fmt(cpu.get('1_master'), 's')} -> {_fmt(cpu.get('2_masters'), 's')}")
        )  # fmt: skip
    node = results.get("wide")
    if node:
        if "error" in node:
            out.append(("wide DAG", "error", "", str(node["error"])[:80]))
        else:
            r = node.get("ratio") or {}
            out.append(
                (f"wide DAG 1 -> {node.get('width')} -> 1: end to end",
                 _fmt(node.get("e2e_ms"), "ms"), _x(r.get("e2e_ms")),
                 f"{_fmt(node.get('tasks_per_s'))} tasks/s")
            )  # fmt: skip
    node = results.get("recovery")
    if node:
        if "error" in node:
            out.append(("recovery", "error", "", str(node["error"])[:80]))
        else:
            r = node.get("ratio") or {}
            out += [
                (f"recovery: rebuild {node.get('events'):,} events, no snapshot",
                 _fmt(node.get("without_snapshot_s"), "s"), _x(r.get("events_per_s")),
                 f"{_fmt(node.get('events_per_s'))} events/s; read {node.get('read_s')} s, "
                 f"decode {node.get('decode_s')} s, fold {node.get('fold_s')} s"),
                ("recovery: with snapshot", _fmt(node.get("with_snapshot_s"), "s"), "",
                 f"tail {node.get('snapshot_tail_events')} events"
                 if node.get("with_snapshot_s") is not None
                 else str(node.get("snapshot_note") or "not measured")),
                ("recovery: memory of the rebuilt states", _fmt(node.get("state_mb"), "MB"), "",
                 f"{node.get('instances'):,} instances; "
                 f"{node.get('state_mb_per_10k_instances')} MB per 10,000"),
            ]  # fmt: skip
    for key, label in (("lag", "1 master"), ("lag_2_masters", "2 masters")):
        node = results.get(key)
        if not node:
            continue
        if "error" in node:
            out.append((f"projection lag, {label}", "error", "", str(node["error"])[:80]))
            continue
        r = node.get("ratio") or {}
        out.append(
            (f"projection lag ({label} throughput run)",
             f"p50 {_fmt(node.get('p50'), 'ms')}  p95 {_fmt(node.get('p95'), 'ms')}",
             f"{_x(r.get('p50'))} / {_x(r.get('p95'))}",
             f"{node.get('events'):,} events, polled every {node.get('poll_ms')} ms")
        )  # fmt: skip
    node = results.get("failover")
    if node:
        if "error" in node:
            out.append(("failover", "error", "", str(node["error"])[:80]))
        else:
            for role, knob in (
                ("master", f"session {node.get('session_timeout_ms')} ms"),
                ("worker", f"worker timeout {node.get('worker_timeout_s')} s, heartbeat "
                           f"every {node.get('heartbeat_interval_s')} s"),
            ):  # fmt: skip
                found = node.get(role) or {}
                d = found.get("next_progress_s") or {}
                stuck = f", {found['stuck']} stuck" if found.get("stuck") else ""
                out.append(
                    (f"failover: {role} SIGKILL -> next progress",
                     f"p50 {_fmt(d.get('p50'), 's')}  max {_fmt(d.get('max'), 's')}", "",
                     f"{found.get('kills')} kills, {d.get('n')} instances"
                     f"{stuck}; {knob}")
                )  # fmt: skip
    return out


def table(results: dict[str, Any]) -> Table:
    meta = results.get("meta") or {}
    t = Table(title=f"tideflow bench ({meta.get('scale', '?')} scale)", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_column("x ceiling", justify="right")
    t.add_column("note")
    for row in rows(results):
        t.add_row(*row)
    return t


def print_report(results: dict[str, Any], console: Console) -> None:
    console.print(table(results))
    prof = results.get("profile") or {}
    for role, found in prof.items():
        if not isinstance(found, dict) or not found.get("self"):
            continue
        console.print(f"[bold]profile of the {role}[/bold] ({found.get('samples')} samples)")
        for name, share in found["self"][:8]:
            console.print(f"  {share:5.1f}% self  {escape(name)}")


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def failed_sections(results: dict[str, Any]) -> list[str]:
    """Sections that ended in an error (a burst that jammed is a figure, not an error:
    it is `complete: false` in its section)."""
    return sorted(k for k, v in results.items() if isinstance(v, dict) and "error" in v)
