"""What the bench watches of the processes it runs: CPU seconds per role, new warnings in their
logs, and whether they are still alive."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from infra.bench.scenarios import (
    BenchTimeout,
)
from infra.processes import Fleet, log_tail


def cpu_seconds(fleet: Fleet, stack_pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each role, the broker and PostgreSQL
    (when started for the run; PostgreSQL with its backends) and this process."""
    import psutil

    pids: dict[str, int] = {name: proc.pid for name, proc in fleet.procs.items()}
    pids.update(stack_pids)
    pids["bench"] = os.getpid()
    out: dict[str, float] = {}
    for role, pid in pids.items():
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)] if role == "postgres" else [proc]
            total = 0.0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
            out[role] = total
        except psutil.Error:
            continue
    return out


def percent(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """% of one core each role used between two `cpu_seconds` readings."""
    return {
        role: round(100 * (after[role] - before.get(role, 0.0)) / seconds, 1)
        for role in sorted(after)
    }


def log_sizes(log_dir: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_size for p in log_dir.glob("*.log")}


def log_warnings(log_dir: Path, since: dict[str, int], keep: int = 5) -> dict[str, Any]:
    """WARNING and ERROR lines the roles logged since `since` (sizes): count per role
    and the first few distinct messages (timestamps cut)."""
    out: dict[str, Any] = {}
    for path in sorted(log_dir.glob("*.log")):
        with path.open("rb") as f:
            f.seek(since.get(path.stem, 0))
            lines = f.read().decode("utf-8", errors="replace").splitlines()
        bad = [ln for ln in lines if " WARNING " in ln or " ERROR " in ln]
        if not bad:
            continue
        first: list[str] = []
        for line in bad:
            message = re.sub(r"\d+(\.\d+)?", "N", line.split(" ", 2)[-1])[:160]
            if message not in first:
                first.append(message)
            if len(first) >= keep:
                break
        out[path.stem] = {"count": len(bad), "first": first}
    return out


def check_alive(fleet: Fleet, log_dir: Path) -> None:
    """Raise if a role the bench started has exited (its log tail says why)."""
    for name, proc in fleet.procs.items():
        if proc.poll() is not None:
            raise BenchTimeout(
                f"{name} exited with {proc.returncode}: "
                f"{log_tail(log_dir / f'{name}.log', 6, ' | ')}"
            )
