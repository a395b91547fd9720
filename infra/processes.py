"""Running tideflow roles (master, worker, projector, api) as child processes.

`tideflow up`, the demo and the integration tests share this: a role is
`python -m infra.cli <role>` with the stack's settings in its environment. Stopping sends
SIGTERM (graceful hand-over) and kills what does not exit in time; `kill()` is SIGKILL.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from infra.settings import Settings

log = logging.getLogger("tideflow.infra")


@dataclass
class Fleet:
    settings: Settings
    log_dir: Path | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, role: str, name: str | None = None, **env: str) -> subprocess.Popen[bytes]:
        """Start `role` under `name` (default: the role); extra env overrides settings."""
        name = name or role
        full_env = {**os.environ, **self.settings.to_env(), **env}
        out: int | object = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", role],
            env=full_env,
            stdout=out,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.procs[name] = proc
        log.info("started %s (pid %s)", name, proc.pid)
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL: no goodbye, no flush, as a crash would be."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self, name: str, timeout: float = 15.0) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %ss; killing it", name, timeout)
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name in list(self.procs):
            self.stop(name)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_all()


def log_tail(path: Path | None, lines: int = 20, sep: str = "\n") -> str:
    """The last `lines` lines of a process log, for error messages ("(no log)" if none)."""
    try:
        if path is None:
            raise FileNotFoundError
        return sep.join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
