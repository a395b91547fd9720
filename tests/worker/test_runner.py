"""Running one attempt: real `bash` processes, no broker."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from streams.core.enums import Outcome, TaskType
from streams.core.worker_messages import TaskAssignment
from streams.worker.result import NOT_STARTED
from streams.worker.runner import OUTPUT_LIMIT, Attempt, run_attempt

AT = datetime(2024, 1, 1, tzinfo=UTC)


def shell(command: str, **extra: object) -> TaskAssignment:
    fields: dict[str, object] = {
        "instance_id": "i-1",
        "task_code": "t",
        "attempt": 2,
        "worker_id": "w",
        "type": TaskType.SHELL,
        "command": command,
        "at": AT,
        **extra,
    }
    return TaskAssignment(**fields)  # type: ignore[arg-type]


def gone(pid: int, within_s: float = 2.0) -> bool:
    """The process exited (a zombie waiting for its reaper counts) within `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def running(pid: int) -> bool:
    """The process exists and has not exited (a zombie has)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_once_exists(attempt: Attempt, marker: Path, within_s: float = 30.0) -> None:
    """Kill `attempt` as soon as its command has created `marker` (it is running by then)."""
    deadline = time.monotonic() + within_s
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    attempt.kill()


def test_shell_exit_zero_succeeds_with_its_output_and_env() -> None:
    command = 'echo "$TIDEFLOW_INSTANCE_ID $TIDEFLOW_TASK_CODE $TIDEFLOW_ATTEMPT $DAY"; echo e >&2'
    result = run_attempt(shell(command, env={"DAY": "2024-01-01"}))

    assert (result.outcome, result.exit_code) == (Outcome.SUCCESS, 0)
    assert result.output == "i-1 t 2 2024-01-01\ne\n"


def test_shell_nonzero_exit_fails_with_the_exit_code() -> None:
    result = run_attempt(shell("echo broken; exit 7"))

    assert (result.outcome, result.exit_code, result.output) == (Outcome.FAILURE, 7, "broken\n")


def test_shell_killed_by_a_signal_reports_128_plus_the_signal() -> None:
    result = run_attempt(shell("kill -9 $$"))

    assert (result.outcome, result.exit_code) == (Outcome.FAILURE, 137)


def test_output_keeps_only_the_last_8_kib() -> None:
    result = run_attempt(shell("for i in $(seq 1 5000); do echo line-$i; done"))

    assert result.outcome is Outcome.SUCCESS
    assert len(result.output.encode()) == OUTPUT_LIMIT
    assert result.output.endswith("line-4999\nline-5000\n")


def test_shell_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    result = run_attempt(shell(f"sleep 30 & echo $! > {pidfile}; wait", timeout_s=0.5))

    assert result.outcome is Outcome.TIMEOUT
    assert result.exit_code == 143  # ended by SIGTERM, not by `sleep 30` running out
    assert gone(int(pidfile.read_text()))  # the whole process group got the signal


def test_shell_surviving_sigterm_is_killed_after_the_grace() -> None:
    # The trap reports SIGTERM and carries on; only the SIGKILL that follows ends it.
    survives = "trap 'echo got-term' TERM; echo ready; while true; do sleep 0.05; done"
    attempt = Attempt(shell(survives, timeout_s=0.5), kill_grace_s=0.3)

    result = attempt.run()

    assert (result.outcome, result.exit_code) == (Outcome.TIMEOUT, 137)  # SIGKILL
    # SIGTERM came first and was survived (bash may also say its `sleep` was "Terminated")
    assert result.output.startswith("ready\n") and result.output.endswith("got-term\n")


def test_kill_request_stops_a_running_attempt(tmp_path: Path) -> None:
    marker = tmp_path / "running"
    attempt = Attempt(shell(f"echo running; touch {marker}; sleep 30"))
    threading.Thread(target=kill_once_exists, args=(attempt, marker), daemon=True).start()

    result = attempt.run()

    assert (result.outcome, result.exit_code) == (Outcome.KILLED, 143)  # not `sleep 30`'s end
    assert result.output == "running\n"


def test_kill_before_run_means_the_attempt_never_starts(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    attempt = Attempt(shell(f"touch {marker}"))
    attempt.kill()

    result = attempt.run()

    assert (result.outcome, result.exit_code) == (Outcome.KILLED, NOT_STARTED)
    assert not marker.exists()


def test_kill_for_shutdown_reports_the_given_outcome() -> None:
    attempt = Attempt(shell("sleep 30"))
    threading.Timer(0.2, attempt.kill, (Outcome.FAILURE,)).start()

    assert attempt.run().outcome is Outcome.FAILURE


def test_noop_succeeds_without_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))

    result = run_attempt(shell("exit 1", type=TaskType.NOOP))

    assert (result.outcome, result.exit_code, result.output) == (Outcome.SUCCESS, 0, "")
    assert started == []


def test_a_dry_run_shell_task_succeeds_without_starting_a_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[object] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    marker = tmp_path / "ran"

    result = run_attempt(shell(f"touch {marker}; exit 1", dry_run=True))

    assert (result.outcome, result.exit_code) == (Outcome.SUCCESS, 0)
    assert result.output == "[tideflow] dry run: not executed\n"
    assert started == [] and not marker.exists()


def test_background_child_holding_stdout_does_not_hold_the_result(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    result = run_attempt(shell(f"echo hi; sleep 30 & echo $! > {pidfile}"))

    child = int(pidfile.read_text())
    try:
        assert running(child)  # the result came while the child still runs
        assert (result.outcome, result.output) == (Outcome.SUCCESS, "hi\n")
    finally:
        os.kill(child, signal.SIGKILL)
