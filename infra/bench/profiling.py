"""Sampling a running role with py-spy (when installed) and summarising where time goes.

`py-spy record --nonblocking` reads the target's memory without pausing it, so the
figures measured meanwhile are barely disturbed. Output: collapsed stacks (`-f raw`, one
line per distinct stack with its sample count), summarised here by function: self time
(the innermost frame) and inclusive time (any frame of the stack).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_ROOT = str(Path(__file__).resolve().parents[2]) + "/"


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Sampler:
    """py-spy sampling one process until `stop()`."""

    def __init__(self, pid: int, out: Path, rate: int = 200) -> None:
        binary = py_spy()
        if binary is None:
            raise FileNotFoundError("py-spy is not installed (pip install py-spy)")
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [binary, "record", "-p", str(pid), "-r", str(rate), "--nonblocking"]
        cmd += ["-f", "raw", "-o", str(out)]
        self._log = open(out.with_suffix(".log"), "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGINT, as Ctrl-C: py-spy writes its file and exits."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()


def _function(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    if path.startswith(_ROOT):
        path = path[len(_ROOT) :]
    elif "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/lib/python" in path:
        path = "stdlib/" + path.split("/lib/python", 1)[1].split("/", 1)[-1]
    return f"{m['func']} ({path})"


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive shares (%) of the busiest functions in a collapsed-stack file."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {"samples": 0, "self": [], "inclusive": [], "file": str(path)}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for f in set(frames):
            inclusive[f] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100.0 * n / total, 1)] for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "self": share(self_time) if total else [],
        "inclusive": share(inclusive) if total else [],
        "file": str(path),
    }
