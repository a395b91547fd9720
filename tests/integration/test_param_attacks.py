"""Startup parameters that would run code on a worker, tried on a real master, worker and
projector through every door: the HTTP API (422, nothing sent), the CLI as an operator runs it
(exit 2, nothing sent), a `StartWorkflow` written straight to the commands topic (refused
`INVALID_PARAMS`, no instance, nothing dispatched), and a dispatch record written straight to
the worker's topic (the worker drops the parameters, names them in the attempt's output and
runs only the task). No attack ever creates its marker file; an ordinary run right after
succeeds, so the worker was there to be hijacked."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infra import compose
from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from schemas.catalog import COMMANDS
from schemas.serde import decode, expect
from streams.core.commands import StartWorkflow
from streams.core.enums import Outcome, TaskType
from streams.core.events import CommandRejected, TaskDispatched, WorkflowStarted
from streams.core.rejections import Reason
from streams.core.worker_messages import TaskAssignment
from streams.kafka.producer import Producer
from streams.kafka.reader import read_to_end
from tests.integration.conftest import fresh_settings
from tests.integration.helpers import (
    finished_acks,
    instance_events,
    send_start,
    wait_finished,
    wait_projector_running,
    wait_until,
)

pytestmark = pytest.mark.integration

TASK = "cat /dev/null; echo ran"  # an external program (PATH) and a builtin (BASH_FUNC_echo)
VICTIM = {"code": "victim", "tasks": [{"code": "a", "command": TASK}]}


@pytest.fixture(scope="module")
def running(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One deployment with a master, a worker and the projector, and `victim` registered."""
    settings = fresh_settings(stack, tideflow_heartbeat_interval_s=0.5)
    prepare(settings)
    with Fleet(settings, log_dir=tmp_path_factory.mktemp("attacks") / "logs") as fleet:
        for role in ("master", "worker", "projector"):
            fleet.start(role)
        wait_projector_running(settings)
        assert TestClient(compose.http_app(settings)).post("/workflows", json=VICTIM).is_success
        yield settings


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


def attacks(tmp: Path, marker: Path) -> dict[str, str]:
    """Parameter name -> a value that touches `marker` if the name reaches the task's env."""
    script = tmp / "evil.sh"
    script.write_text(f"#!/bin/sh\n/usr/bin/env touch {marker}\n")
    script.chmod(0o755)
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "cat").symlink_to(script)
    (tmp / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    return {
        "BASH_ENV": f"$(touch {marker})",
        "BASH_FUNC_echo%%": f"() {{ touch {marker}; }}",
        "PATH": str(bin_dir),
        "ENV": str(script),
        "LD_PRELOAD": str(tmp / "evil.so"),
        "PYTHONPATH": str(tmp),
        "SHELLOPTS": "xtrace",
        "TIDEFLOW_ATTEMPT": "99",
    }


def started_anywhere(settings: Settings, instance_ids: set[str]) -> set[str]:
    """Which of `instance_ids` have any StartWorkflow on the commands topic."""
    commands = (
        expect(m.value(), COMMANDS) for m in read_to_end(settings.kafka, settings.topics.commands)
    )
    return {c.instance_id for c in commands if isinstance(c, StartWorkflow)} & instance_ids


def test_http_refuses_each_attack_with_422_and_sends_nothing(
    running: Settings, tmp_path: Path, marker: Path
) -> None:
    client = TestClient(compose.http_app(running))
    ids = set()
    for name, value in attacks(tmp_path, marker).items():
        iid = f"http-{uuid.uuid4().hex[:8]}"
        ids.add(iid)
        body = {"params": {"day": "1", name: value}, "instance_id": iid}

        response = client.post("/workflows/victim/runs", json=body)

        assert response.status_code == 422, (name, response.text)
        (problem,) = response.json()["problems"]
        assert problem.endswith(f"found {name!r}")
    assert started_anywhere(running, ids) == set()
    assert not marker.exists()


def test_cli_refuses_the_attacks_with_exit_2_naming_each_and_sends_nothing(
    running: Settings, tmp_path: Path, marker: Path
) -> None:
    params = attacks(tmp_path, marker)
    args = [arg for name, value in params.items() for arg in ("-p", f"{name}={value}")]

    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "run", "victim", "-p", "day=1", *args],
        env={**os.environ, **running.to_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2, done.stderr
    assert "invalid parameters" in done.stderr
    for name in params:
        assert f"found {name!r}" in done.stderr, name
    assert "instance" not in done.stdout
    assert not marker.exists()


def test_a_start_sent_straight_to_the_commands_topic_is_refused_invalid_params(
    running: Settings, tmp_path: Path, marker: Path
) -> None:
    tasks = [{"code": "a", "command": TASK}]
    sent = {
        send_start(running, "straight", tasks, {"day": "1", name: value}): name
        for name, value in attacks(tmp_path, marker).items()
    }

    def refusals() -> dict[str, CommandRejected] | None:
        found = {
            iid: e
            for iid in sent
            for e in instance_events(running, iid)
            if isinstance(e, CommandRejected)
        }
        return found if len(found) == len(sent) else None

    refused = wait_until(refusals, timeout_s=30, what="a refusal of every attack")
    for iid, name in sent.items():
        assert refused[iid].reason is Reason.INVALID_PARAMS
        assert refused[iid].message.endswith(f"found {name!r}")
        assert not any(
            isinstance(e, WorkflowStarted | TaskDispatched) for e in instance_events(running, iid)
        )
    ordinary = send_start(running, "straight", tasks, {"day": "1", "path": "data"})
    service = compose.service(running)
    try:
        assert wait_finished(service, ordinary, 30)["state"] == "SUCCESS"
    finally:
        service.close()
    assert not marker.exists()


def test_a_dispatch_record_written_by_someone_else_cannot_hijack_the_worker(
    running: Settings, tmp_path: Path, marker: Path
) -> None:
    (worker,) = compose.service(running).workers()
    dispatched = [decode(m.value()) for m in read_to_end(running.kafka, running.topics.dispatch)]
    epoch = max((d.epoch for d in dispatched if isinstance(d, TaskAssignment)), default=0)
    producer = Producer(running.kafka)
    forged = {}
    for name, value in attacks(tmp_path, marker).items():
        iid = f"forged-{uuid.uuid4().hex[:8]}"
        forged[iid] = name
        record = TaskAssignment(
            instance_id=iid, task_code="a", attempt=1, worker_id=worker["worker_id"],
            type=TaskType.SHELL, command=TASK, env={"day": "1", name: value}, epoch=epoch,
            at=datetime.now(UTC),
        )  # fmt: skip
        producer.send(running.topics.dispatch, worker["worker_id"], record)
    producer.flush()

    for iid, name in forged.items():
        (ack,) = wait_until(lambda i=iid: finished_acks(running, i), what=f"{name}'s ack")
        assert (ack.outcome, ack.output.splitlines()[-1]) == (Outcome.SUCCESS, "ran"), name
        assert f"[tideflow] parameter {name} refused" in ack.output
    assert not marker.exists()
