"""The fault schedule and the process supervisor that carries it out.

`plan_faults(seed, ...)` draws, from `random.Random(seed)`, when faults happen (exponential
gaps), what they hit (masters, workers, the projector, PostgreSQL under the projector), with
which signal (SIGKILL: a crash; SIGTERM: a graceful stop) and how long the victim stays down
before it is restarted. The plan is fully seeded; which process a fault lands on is chosen
among those up at that moment, so a replay with the same seed repeats the plan, not
necessarily every interleaving.

`Supervisor` runs the fleet: it starts every role under a stable name (workers keep their
ids, so a restarted worker comes back as itself), injects the planned faults, restarts
victims after their pause, records every kill with the UTC clock the events' `at` use, and
notices a process that exits on its own (a crash the chaos did not cause), which it reports
and restarts. At most `max_down` members of a role are down at once (default 1: a master
kill always leaves a survivor to take over).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from infra.pg_server import PG_USER, find_pg_tools
from infra.processes import Fleet, log_tail

log = logging.getLogger("tideflow.chaos")

# (role, signal) -> weight; "postgres"/"restart" is a `pg_ctl restart` under the projector.
DEFAULT_WEIGHTS: dict[tuple[str, str], float] = {
    ("master", "SIGKILL"): 3.0,
    ("master", "SIGTERM"): 1.0,
    ("worker", "SIGKILL"): 3.0,
    ("worker", "SIGTERM"): 1.0,
    ("projector", "SIGKILL"): 1.0,
    ("projector", "SIGTERM"): 0.5,
    ("postgres", "restart"): 0.7,
}
# Optional (ChaosOptions.pause_faults): SIGSTOP, then SIGCONT after 3.5-7 s, longer than the
# group session and the worker timeout: the process wakes up as a zombie whose partitions or
# attempts were taken over meanwhile (what the owner epochs fence).
PAUSE_WEIGHTS: dict[tuple[str, str], float] = {
    ("master", "SIGSTOP"): 1.0,
    ("worker", "SIGSTOP"): 1.0,
}
SIGSTOP_EXTRA_S = 3.0
STOP_TIMEOUT_S = 20.0  # a SIGTERMed process that has not exited by then gets SIGKILL


@dataclass(frozen=True, slots=True)
class PlannedFault:
    offset_s: float  # from the start of the fault phase
    role: str
    signal: str
    pause_s: float  # down time before the restart
    pick: float  # in [0, 1): which of the eligible processes


def plan_faults(
    seed: int,
    duration_s: float,
    mean_interval_s: float,
    *,
    weights: Mapping[tuple[str, str], float] = DEFAULT_WEIGHTS,
    warmup_s: float = 2.0,
    postgres: bool = True,
    pause_s: tuple[float, float] = (0.5, 3.0),
) -> list[PlannedFault]:
    rng = random.Random(seed)
    kinds = [k for k in weights if postgres or k[0] != "postgres"]
    w = [weights[k] for k in kinds]
    out: list[PlannedFault] = []
    t = warmup_s + rng.expovariate(1.0 / mean_interval_s)
    while t < duration_s:
        role, sig = rng.choices(kinds, w)[0]
        extra = SIGSTOP_EXTRA_S if sig == "SIGSTOP" else 0.0
        out.append(
            PlannedFault(
                round(t, 3), role, sig, round(rng.uniform(*pause_s) + extra, 3), rng.random()
            )
        )
        t += max(0.5, rng.expovariate(1.0 / mean_interval_s))
    return out


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A fault as injected: `at` is the UTC time the signal was sent."""

    role: str
    name: str
    signal: str
    at: datetime
    pid: int | None = None
    pause_s: float = 0.0

    @property
    def kind(self) -> str:
        return f"{self.role} {self.signal}"


@dataclass(frozen=True, slots=True)
class Crash:
    """A process that exited without being told to."""

    name: str
    returncode: int | None
    at: datetime
    log_tail: str


def restart_postgres(pg_data: Path, log_file: Path, timeout_s: float = 60.0) -> str:
    """`pg_ctl restart -m fast` of a private cluster (as the postgres user when root); every
    client loses its connection. Returns pg_ctl's output; raises on failure."""
    tools = find_pg_tools()
    if tools is None:
        raise RuntimeError("pg_ctl not found")
    as_postgres = ["runuser", "-u", PG_USER, "--"] if os.geteuid() == 0 else []
    cmd = [
        *as_postgres,
        tools[1],
        "-D",
        str(pg_data),
        "-l",
        str(pg_data.parent / "postgres.log"),
        "-m",
        "fast",
        "-w",
        "-t",
        str(int(timeout_s)),
        "restart",
    ]
    with open(log_file, "ab") as out:  # never a pipe: the new postmaster would inherit it
        res = subprocess.run(
            cmd,
            cwd=pg_data.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            timeout=timeout_s + 10,
            check=False,
        )
    if res.returncode != 0:
        raise RuntimeError(f"pg_ctl restart failed ({res.returncode}); see {log_file}")
    return "restarted"


@dataclass
class _Proc:
    role: str
    env: dict[str, str]
    state: str = "up"  # up | stopping | down | paused (SIGSTOP)
    deadline: float = 0.0  # stopping: SIGKILL at; down: restart at
    pause_s: float = 0.0  # stopping: the down time once it has exited


@dataclass
class Supervisor:
    fleet: Fleet
    roles: dict[str, tuple[str, dict[str, str]]]  # name -> (role, extra env), in start order
    pg_restart: Callable[[], str] | None = None
    max_down: int = 1
    on_event: Callable[[str], None] = lambda _msg: None
    faults: list[FaultRecord] = field(default_factory=list)
    skipped: list[PlannedFault] = field(default_factory=list)
    crashes: list[Crash] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _procs: dict[str, _Proc] = field(default_factory=dict)
    _pg_thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start_all(self) -> None:
        for name, (role, env) in self.roles.items():
            self.fleet.start(role, name, **env)
            self._procs[name] = _Proc(role, env)

    # -- the loop ----------------------------------------------------------------------------

    def run(
        self, plan: list[PlannedFault], t0: float, inject: threading.Event, stop: threading.Event
    ) -> None:
        """Inject `plan` (offsets from monotonic `t0`) while `inject` is set; supervise
        (restarts, crash detection) until `stop` is set."""
        todo = list(plan)
        while not stop.is_set():
            now = time.monotonic()
            while todo and inject.is_set() and now - t0 >= todo[0].offset_s:
                self._inject(todo.pop(0))
            if not inject.is_set():
                self.skipped += todo
                todo = []
            self.tick()
            stop.wait(0.05)

    def tick(self) -> None:
        with self._lock:
            now = time.monotonic()
            for name, p in self._procs.items():
                proc = self.fleet.procs.get(name)
                if p.state == "up" and proc is not None and proc.poll() is not None:
                    self._crashed(name, proc.returncode)
                    self._restart(name)
                elif p.state == "stopping" and proc is not None:
                    if proc.poll() is not None:
                        self.fleet.procs.pop(name, None)
                        p.state, p.deadline = "down", now + p.pause_s
                    elif now >= p.deadline:
                        self.on_event(f"{name} ignored SIGTERM for {STOP_TIMEOUT_S:.0f}s: SIGKILL")
                        self.notes.append(f"{name} did not stop within {STOP_TIMEOUT_S:.0f}s")
                        proc.kill()
                        p.deadline = now + STOP_TIMEOUT_S
                if p.state == "down" and now >= p.deadline:
                    self._restart(name)
                elif p.state == "paused" and now >= p.deadline and proc is not None:
                    proc.send_signal(signal.SIGCONT)
                    p.state = "up"
                    self.on_event(f"SIGCONT {name} (pid {proc.pid})")

    def pids(self, role: str) -> set[int]:
        """Process ids of the running members of `role`."""
        with self._lock:
            return {
                proc.pid
                for name, proc in self.fleet.procs.items()
                if self._procs.get(name) is not None
                and self._procs[name].role == role
                and self._procs[name].state == "up"
                and proc.poll() is None
            }

    def heal(self, timeout_s: float = 60.0) -> bool:
        """Restart every process that is down now (no pause); True once all are up."""
        with self._lock:
            for p in self._procs.values():
                p.pause_s = 0.0
                if p.state in ("down", "paused"):
                    p.deadline = 0.0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.tick()
            with self._lock:
                if all(p.state == "up" for p in self._procs.values()) and not self._pg_busy():
                    return True
            time.sleep(0.1)
        return False

    def _pg_busy(self) -> bool:
        return self._pg_thread is not None and self._pg_thread.is_alive()

    # -- faults ------------------------------------------------------------------------------

    def _inject(self, fault: PlannedFault) -> None:
        if fault.role == "postgres":
            self._restart_postgres(fault)
            return
        with self._lock:
            members = [n for n, p in self._procs.items() if p.role == fault.role]
            down = [n for n in members if self._procs[n].state != "up"]
            up = [n for n in members if self._procs[n].state == "up"]
            if not up or len(down) >= self.max_down:
                self.skipped.append(fault)
                return
            name = up[int(fault.pick * len(up))]
            proc = self.fleet.procs[name]
            at = datetime.now(UTC)
            if fault.signal == "SIGKILL":
                self.fleet.kill(name)
                self._procs[name].state = "down"
                self._procs[name].deadline = time.monotonic() + fault.pause_s
            elif fault.signal == "SIGSTOP":
                proc.send_signal(signal.SIGSTOP)
                self._procs[name].state = "paused"
                self._procs[name].deadline = time.monotonic() + fault.pause_s
            else:
                proc.send_signal(signal.SIGTERM)
                p = self._procs[name]
                p.state, p.pause_s = "stopping", fault.pause_s
                p.deadline = time.monotonic() + STOP_TIMEOUT_S
            self.faults.append(
                FaultRecord(fault.role, name, fault.signal, at, proc.pid, fault.pause_s)
            )
        what = "SIGCONT" if fault.signal == "SIGSTOP" else "back"
        self.on_event(f"{fault.signal} {name} (pid {proc.pid}); {what} in {fault.pause_s:.1f}s")

    def _restart_postgres(self, fault: PlannedFault) -> None:
        if self.pg_restart is None or self._pg_busy():
            self.skipped.append(fault)
            return
        restart = self.pg_restart

        def work() -> None:
            try:
                restart()
                self.on_event("postgresql restarted")
            except Exception as exc:
                self.notes.append(f"postgresql restart failed: {exc}")
                self.on_event(f"postgresql restart FAILED: {exc}")

        self.faults.append(FaultRecord("postgres", "postgresql", "restart", datetime.now(UTC)))
        self.on_event("restarting postgresql (pg_ctl restart -m fast)")
        self._pg_thread = threading.Thread(target=work, name="chaos-pg-restart", daemon=True)
        self._pg_thread.start()

    def _crashed(self, name: str, returncode: int | None) -> None:
        log_dir = self.fleet.log_dir
        tail = log_tail(log_dir / f"{name}.log" if log_dir else None, 15)
        self.crashes.append(Crash(name, returncode, datetime.now(UTC), tail))
        self.on_event(f"{name} exited on its own with {returncode}; restarting it")

    def _restart(self, name: str) -> None:
        p = self._procs[name]
        with contextlib.suppress(KeyError):
            self.fleet.procs.pop(name)
        self.fleet.start(p.role, name, **p.env)
        p.state, p.deadline = "up", 0.0
