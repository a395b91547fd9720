"""Running one attempt of a task on this machine: the only place a worker starts processes.

A SHELL task is `bash -c COMMAND` in its own session (process group), so a timeout or a kill
reaches everything the command started, and a terminal's Ctrl-C aimed at the worker does not
reach the task. Its environment is the worker's, plus the assignment's parameters that pass
the core's rule (`streams.core.params`: never BASH_ENV, BASH_FUNC_*, PATH, LD_*, PYTHON*,
TIDEFLOW_*, ...; the master refuses such a start, and a dispatch record written by anyone else
is checked again here: a refused one is dropped and named in the attempt's output), plus
TIDEFLOW_INSTANCE_ID / TIDEFLOW_TASK_CODE / TIDEFLOW_ATTEMPT last; stdout and stderr are merged
and the last `OUTPUT_LIMIT` bytes kept. Past its timeout, or on `kill()`, the group gets SIGTERM,
then SIGKILL `KILL_GRACE_S` later. A NOOP task succeeds at once without a process (it exists
to measure the scheduler, not process start-up), and so does every task of a dry run.
Nothing here talks to Kafka.

The waiting thread blocks in `waitpid` rather than polling, so a task's end is seen at once:
timeouts and SIGKILL escalation run on `threading.Timer`s instead.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping

from streams.core import render
from streams.core.enums import Outcome, TaskType
from streams.core.out_params import OutParamScanner
from streams.core.params import param_problem
from streams.core.worker_messages import TaskAssignment
from streams.worker import http_task, sql_task
from streams.worker.config import TaskResources
from streams.worker.result import NOT_STARTED, Result

log = logging.getLogger("tideflow.worker.runner")

OUTPUT_LIMIT = 8 * 1024  # bytes of output tail reported with the finished ack
KILL_GRACE_S = 5.0  # SIGTERM -> SIGKILL
_LINGER_S = 0.2  # after the shell exits, how long to wait for children still holding stdout
# A dry run (DolphinScheduler's dryRun) succeeds at once, like a NOOP, and says so.
DRY_RUN_NOTICE = "[tideflow] dry run: not executed\n"
_REFUSALS_SHOWN = 20  # refused parameters named one per line; the rest are counted
# An HTTP or SQL attempt: (assignment, resources, killed?) -> Result, run on the slot's thread.
InProcessTask = Callable[[TaskAssignment, TaskResources, Callable[[], bool]], Result]
IN_PROCESS: dict[TaskType, InProcessTask] = {
    TaskType.HTTP: http_task.run,
    TaskType.SQL: sql_task.run,
}
# The worker's configuration that names credentials: never in a task's environment.
PRIVATE_VARIABLES = frozenset({"TIDEFLOW_DATASOURCES"})


class OutputTail:
    """The last `limit` bytes read from a pipe, by a daemon thread."""

    def __init__(self, fd: int, limit: int = OUTPUT_LIMIT) -> None:
        self._fd = fd
        self._limit = limit
        self._buf = bytearray()
        # Every byte is scanned for `setValue` markers, not only the kept tail.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.out_params = OutParamScanner()
        self._lock = threading.Lock()
        self._exited = threading.Event()
        self._thread = threading.Thread(target=self._read, name="task-output", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                # Once the shell exited, a quiet pipe means only lingering children hold it.
                timeout = _LINGER_S if self._exited.is_set() else 0.5
                ready, _, _ = select.select([self._fd], [], [], timeout)
                if not ready:
                    if self._exited.is_set():
                        return
                    continue
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    return
                self.out_params.feed(self._decoder.decode(chunk))
                with self._lock:
                    self._buf += chunk
                    if len(self._buf) > self._limit:
                        del self._buf[: len(self._buf) - self._limit]
        finally:
            os.close(self._fd)

    def finish(self) -> str:
        """Read what is left (up to `_LINGER_S` of silence) and return the tail as text."""
        self._exited.set()
        self._thread.join()
        with self._lock:
            return self._buf.decode("utf-8", errors="replace")


class Attempt:
    """One attempt of one assignment. `run()` blocks until it ends; `kill()` may be called
    from any thread, before or during `run()`."""

    def __init__(
        self,
        assignment: TaskAssignment,
        *,
        kill_grace_s: float = KILL_GRACE_S,
        resources: TaskResources | None = None,
    ) -> None:
        self.assignment = assignment
        self._kill_grace_s = kill_grace_s
        self._resources = resources or TaskResources()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped_as: Outcome | None = None  # why we signalled the group, if we did
        self._timers: list[threading.Timer] = []

    @property
    def kill_requested(self) -> bool:
        return self._stopped_as is not None

    def kill(self, outcome: Outcome = Outcome.KILLED) -> None:
        """Stop the attempt: it ends with `outcome` (KILLED on request; a worker shutting down
        passes FAILURE). Before `run()` the attempt will not start at all."""
        self._terminate(outcome)

    def run(self) -> Result:
        a = self.assignment
        if a.type is TaskType.NOOP or a.dry_run:
            if self._stopped_as is not None:
                return Result(self._stopped_as, NOT_STARTED, "")
            return Result(Outcome.SUCCESS, 0, DRY_RUN_NOTICE if a.dry_run else "")
        if a.type in IN_PROCESS:
            return self._in_process(IN_PROCESS[a.type])
        env, refused = task_environment(a, os.environ)
        if a.type is TaskType.PYTHON:
            interpreter = python_interpreter(a, self._resources)
            if interpreter is None:
                name = a.spec.environment if a.spec else ""
                return Result(Outcome.FAILURE, NOT_STARTED, f"no python environment {name!r}")
            workdir = tempfile.mkdtemp(prefix="tideflow-py-")
            script = os.path.join(workdir, "task.py")
            with open(script, "w", encoding="utf-8") as f:
                f.write(render.python(a.command, a.env))
            argv = [interpreter, script]
        else:
            workdir = None
            command, extra = render.shell(a.command, a.env)
            env.update(extra)
            env.update(own_variables(a))  # nothing overrides the worker's own
            argv = ["bash", "-c", command]
        try:
            return self._process(argv, env, refused)
        finally:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)

    def _in_process(self, run: InProcessTask) -> Result:
        """An HTTP or SQL attempt, run on this thread; a kill is a flag it checks."""
        a = self.assignment
        with self._lock:
            if self._stopped_as is not None:
                return Result(self._stopped_as, NOT_STARTED, "")
        if a.timeout_s is not None and a.timeout_s > 0:
            self._after(a.timeout_s, self._terminate, Outcome.TIMEOUT)
        try:
            result = run(a, self._resources, lambda: self._stopped_as is not None)
        finally:
            for timer in self._timers:
                timer.cancel()
        stopped = self._stopped_as
        return result if stopped is None else Result(stopped, result.exit_code, result.output)

    def _process(self, argv: list[str], env: dict[str, str], refused: list[str]) -> Result:
        a = self.assignment
        read_fd, write_fd = os.pipe()
        if refused:
            # Written before the child starts and bounded (well under a pipe's buffer), so it
            # cannot block and comes first in the output.
            os.write(write_fd, refusal_notice(refused))
        with self._lock:
            if self._stopped_as is not None:  # killed before it started: never start it
                os.close(read_fd)
                os.close(write_fd)
                return Result(self._stopped_as, NOT_STARTED, "")
            try:
                self._proc = subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=write_fd,
                    stderr=write_fd,
                    start_new_session=True,
                )
            except (OSError, ValueError) as exc:  # no bash, bad env (NUL bytes), no fds...
                os.close(read_fd)
                return Result(Outcome.FAILURE, NOT_STARTED, f"cannot start: {exc}")
            finally:
                os.close(write_fd)  # the child has its copy; EOF comes when it closes it
            proc = self._proc
        tail = OutputTail(read_fd)
        if a.timeout_s is not None and a.timeout_s > 0:
            self._after(a.timeout_s, self._terminate, Outcome.TIMEOUT)
        try:
            code = proc.wait()
        finally:
            for timer in self._timers:
                timer.cancel()
        output = tail.finish()
        exit_code = 128 - code if code < 0 else code
        if self._stopped_as is not None:
            return Result(self._stopped_as, exit_code, output)
        outcome = Outcome.SUCCESS if code == 0 else Outcome.FAILURE
        return Result(outcome, exit_code, output, tail.out_params.finish())

    def _after(self, delay_s: float, fn: Callable[..., object], *args: object) -> None:
        timer = threading.Timer(delay_s, fn, args)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _terminate(self, outcome: Outcome) -> None:
        with self._lock:
            if self._stopped_as is not None:
                return  # the first reason stands (a kill after a timeout is still a timeout)
            self._stopped_as = outcome
            proc = self._proc
            if proc is None:
                return
            if self._signal(proc, signal.SIGTERM):
                self._after(self._kill_grace_s, self._signal, proc, signal.SIGKILL)
        a = self.assignment
        log.info("%s %s/%s/%s", outcome.name.lower(), a.instance_id, a.task_code, a.attempt)

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> bool:
        """Signal the attempt's process group, unless its leader was already reaped (its
        pid, and so the group id, could then belong to someone else)."""
        if proc.returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        return True


def task_environment(a: TaskAssignment, own: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The environment of the attempt's process, and the assignment's parameters refused.

    The worker's own environment first, then only the parameters the core's rule allows (so
    none can replace a variable the shell, loader or an interpreter reads), then the worker's
    TIDEFLOW_* variables, which nothing overrides."""
    allowed, refused = {}, []
    for name, value in a.env.items():
        if param_problem(name, value) is None:
            allowed[name] = value
        elif not _reference_only(name, value):
            refused.append(name)
    env = {
        **{k: v for k, v in own.items() if k not in PRIVATE_VARIABLES},
        **allowed,
        **own_variables(a),
    }
    if refused:
        log.warning(
            "%s/%s/%s: parameters refused (not passed to the task): %s",
            a.instance_id, a.task_code, a.attempt, ", ".join(_shown(n) for n in refused),
        )  # fmt: skip
    return env, refused


def own_variables(a: TaskAssignment) -> dict[str, str]:
    """The worker's own variables for an attempt: set last, never a parameter's."""
    return {
        "TIDEFLOW_INSTANCE_ID": a.instance_id,
        "TIDEFLOW_TASK_CODE": a.task_code,
        "TIDEFLOW_ATTEMPT": str(a.attempt),
    }


def _reference_only(name: str, value: str) -> bool:
    """A dotted parameter (`system.biz.date`, `extract.response`): it has no environment name
    and reaches a script only through `${name}` (`render`), so it is not refused."""
    return "." in name and "\x00" not in value


def python_interpreter(a: TaskAssignment, resources: TaskResources) -> str | None:
    """The interpreter of the environment the task names, from the worker's configuration
    only; the worker's own interpreter for no name, unless one is configured for ""."""
    name = a.spec.environment if a.spec else ""
    if name in resources.python:
        return resources.python[name]
    return sys.executable if name == "" else None


def refusal_notice(refused: list[str]) -> bytes:
    """`[tideflow] parameter NAME refused` lines for the attempt's output (bounded)."""
    lines = [
        f"[tideflow] parameter {_shown(n)} refused: it could change how the task runs\n"
        for n in refused[:_REFUSALS_SHOWN]
    ]
    if len(refused) > _REFUSALS_SHOWN:
        lines.append(f"[tideflow] and {len(refused) - _REFUSALS_SHOWN} more parameters refused\n")
    return "".join(lines).encode("utf-8", errors="replace")


def _shown(name: str) -> str:
    """The name as is when it is short and printable, else quoted: a refused name must not
    forge lines in the output or the log."""
    if len(name) <= 80 and name.isprintable() and not any(c.isspace() for c in name):
        return name
    return repr(name[:80])


def run_attempt(assignment: TaskAssignment, resources: TaskResources | None = None) -> Result:
    """Run one attempt to its end (no kill possible: use `Attempt` for that)."""
    return Attempt(assignment, resources=resources).run()
