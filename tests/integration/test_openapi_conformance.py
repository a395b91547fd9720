"""The API honours its own OpenAPI document: `schemathesis run` with every check, against the
real stack (API, master, worker and projector processes on the broker and PostgreSQL), for
every operation. The one allowance is in schemathesis.toml next to this file, with its reason.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from infra.processes import Fleet, log_tail
from infra.stack import free_port
from tests.integration.helpers import wait_projector_running

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 10  # per operation and phase: about 500 requests in all


def wait_healthy(url: str, fleet: Fleet, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answered:
                if answered.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"API not up at {url}: {log_tail(fleet.log_dir / 'api.log')}")


def test_every_operation_passes_every_schemathesis_check(fleet: Fleet, tmp_path: Path) -> None:
    port = free_port()
    for role in ("projector", "master", "worker"):
        fleet.start(role)
    fleet.start("api", TIDEFLOW_API_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, fleet)
    wait_projector_running(fleet.settings)

    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--no-color",
            "--config-file", str(CONFIG),
            "run", f"{url}/openapi.json",
            "--checks", "all",
            "--max-examples", str(EXAMPLES),
            "--seed", "1",
            "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "failed" not in done.stdout.split("API Operations")[-1]
