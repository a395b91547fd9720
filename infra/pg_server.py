"""Finding (or installing) the machine's PostgreSQL server binaries and waiting for a server:
what the local stack needs to run a private cluster."""

from __future__ import annotations

import glob
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from infra.errors import StackStartFailed
from streams.postgres.errors import DatabaseUnavailable

PG_USER = "postgres"

log = logging.getLogger("tideflow.infra")


def wait_for_postgres(url: str, timeout_s: float) -> None:
    """Return once a connection succeeds; DatabaseUnavailable after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise DatabaseUnavailable(f"PostgreSQL did not answer: {exc}") from exc
            time.sleep(0.2)


def server_major(bindir: str) -> int:
    head = Path(bindir).parent.name.split(".")[0]  # /usr/lib/postgresql/15/bin -> 15
    return int(head) if head.isdigit() else 0


def find_pg_tools() -> tuple[str, str] | None:
    """(initdb, pg_ctl): from PATH, else `pg_config --bindir`, else /usr/lib/postgresql/*/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    bindirs: list[str] = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bindirs += [out.stdout.strip()] if out.returncode == 0 else []
    bindirs += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=server_major, reverse=True)
    for bindir in bindirs:
        initdb, pg_ctl = os.path.join(bindir, "initdb"), os.path.join(bindir, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    return None


def install_postgresql() -> None:
    """Install the server with apt-get (a fresh machine may have only the client)."""
    log.warning("initdb/pg_ctl not found: installing postgresql with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise StackStartFailed(f"{' '.join(cmd)} failed: {(res.stdout + res.stderr)[-2000:]}")
