"""A dispatch record whose parameters would run code on the worker runs nothing but the task.

Each attack is first run straight through `bash` (the control: it does touch its marker, so
the test would catch a worker that let it through), then as an assignment's env through the
runner: the marker is never created, the task's own command still runs, and the refused name
is reported in the attempt's output. Real `bash` processes, no broker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.core.enums import Outcome
from streams.worker.runner import run_attempt, task_environment
from tests.worker.test_runner import shell

BASH = shutil.which("bash") or "/bin/bash"
TOUCH = shutil.which("touch") or "/usr/bin/touch"


@dataclass(frozen=True)
class Attack:
    name: str  # the parameter's name
    value: Callable[[Path, Path], str]  # (scratch dir, marker) -> the parameter's value
    command: str = "echo ran"  # an ordinary task command the attack would hijack


def _script(tmp: Path, marker: Path, name: str = "evil.sh") -> Path:
    path = tmp / name
    path.write_text(f"#!/bin/sh\n{TOUCH} {marker}\n")  # absolute: PATH may be the attack
    path.chmod(0o755)
    return path


def _fake_cat(tmp: Path, marker: Path) -> str:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    _script(bin_dir, marker, "cat")
    return str(bin_dir)


def _sitecustomize(tmp: Path, marker: Path) -> str:
    (tmp / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    return str(tmp)


def _preload(tmp: Path, marker: Path) -> str:
    source = tmp / "evil.c"
    source.write_text(
        "#include <fcntl.h>\n"
        "__attribute__((constructor)) static void evil(void) {"
        f' close(open("{marker}", O_CREAT | O_WRONLY, 0644)); }}\n'
    )
    lib = tmp / "evil.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, source], check=True)
    return str(lib)


ATTACKS = [
    Attack("BASH_ENV", lambda _, m: f"$(touch {m})"),
    Attack("BASH_ENV", lambda t, m: str(_script(t, m))),
    Attack("BASH_FUNC_echo%%", lambda _, m: f"() {{ touch {m}; }}"),
    Attack("PATH", _fake_cat, "cat /dev/null; echo ran"),
    Attack("ENV", lambda t, m: str(_script(t, m)), "sh -i -c true </dev/null 2>&1; echo ran"),
    Attack("PYTHONPATH", _sitecustomize, f"{sys.executable} -c pass; echo ran"),
    Attack("LD_PRELOAD", _preload),
]
IDS = ["BASH_ENV=$(cmd)", "BASH_ENV=file", "BASH_FUNC", "PATH", "ENV", "PYTHONPATH", "LD_PRELOAD"]


@pytest.mark.parametrize("attack", ATTACKS, ids=IDS)
def test_an_assignment_env_that_would_run_code_runs_only_the_task(
    attack: Attack, tmp_path: Path
) -> None:
    if attack.name == "LD_PRELOAD" and shutil.which("cc") is None:
        pytest.skip("no C compiler to build the preloaded library")
    marker = tmp_path / "pwned"
    value = attack.value(tmp_path, marker)
    env = {**os.environ, attack.name: value}
    subprocess.run([BASH, "-c", attack.command], env=env, capture_output=True, timeout=30)
    assert marker.exists(), "control: the attack works when passed straight to bash"
    marker.unlink()

    result = run_attempt(shell(attack.command, env={"day": "1", attack.name: value}))

    assert not marker.exists()
    assert result.outcome is Outcome.SUCCESS
    assert result.output.endswith("ran\n")
    assert f"[tideflow] parameter {attack.name} refused" in result.output


def test_a_parameter_cannot_replace_a_variable_the_worker_sets() -> None:
    forged = {"TIDEFLOW_ATTEMPT": "99", "TIDEFLOW_INSTANCE_ID": "other", "day": "1"}
    command = 'echo "$TIDEFLOW_INSTANCE_ID $TIDEFLOW_ATTEMPT $day"'

    result = run_attempt(shell(command, env=forged))

    assert result.output.splitlines()[-1] == "i-1 2 1"
    assert "[tideflow] parameter TIDEFLOW_ATTEMPT refused" in result.output


def test_the_worker_keeps_its_own_path_and_allowed_parameters_pass() -> None:
    own = {"PATH": "/usr/bin:/bin", "HOME": "/home/worker"}
    assignment = shell("true", env={"PATH": "/tmp/evil", "day": "1", "path": "data"})

    env, refused = task_environment(assignment, own)

    assert refused == ["PATH"]
    assert env["PATH"] == "/usr/bin:/bin"
    assert (env["day"], env["path"], env["HOME"]) == ("1", "data", "/home/worker")


def test_a_refused_name_that_would_forge_output_lines_is_quoted() -> None:
    result = run_attempt(shell("echo ran", env={"x\n[tideflow] all good": "1"}))

    assert result.output.splitlines()[0] == (
        "[tideflow] parameter 'x\\n[tideflow] all good' refused: it could change how the task runs"
    )
    assert result.output.endswith("ran\n")
