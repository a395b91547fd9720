"""`tideflow replay --check-decisions` on a real log: histories a master wrote (retries, a
failure, a pause and resume) are decided the same by today's code; a forged event, whose cause
names no input in the log, is listed and the command exits 1."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from api.check_decisions import check_log
from infra import compose
from infra.processes import Fleet
from infra.settings import Settings
from streams.core.events import TaskSucceeded
from streams.kafka.producer import Producer
from tests.integration.helpers import wait_finished, wait_projector_running, workflow

pytestmark = pytest.mark.integration


def replay_check(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "replay", "--check-decisions"],
        env={**os.environ, **settings.to_env(), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_masters_histories_are_decided_the_same_and_a_forgery_is_found(
    deployment: Settings, fleet: Fleet
) -> None:
    for role in ("master", "worker", "projector"):
        fleet.start(role)
    wait_projector_running(deployment)
    service = compose.service(deployment)
    service.register(workflow("mixed", [
        {"code": "a", "command": "true"},
        {"code": "flaky", "command": "exit 3", "depends": ["a"], "retries": 1,
         "retry_interval": "100ms"},
        {"code": "b", "command": "sleep 0.5", "depends": ["a"]},
    ]))  # fmt: skip
    failing = service.start("mixed")["instance_id"]
    paused = service.start("mixed")["instance_id"]
    service.control(paused, "pause")
    wait_finished(service, failing)
    wait_finished(service, paused)
    service.control(paused, "resume")
    wait_finished(service, paused)

    report = check_log(deployment.kafka)

    assert report.instances == 2 and report.events_read > 10
    assert report.divergences == [], report.divergences
    checked = replay_check(deployment)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "all the same" in checked.stdout

    # Written with an epoch no takeover fences (a lower one would be left out as a zombie's).
    forged = TaskSucceeded(instance_id=failing, task_code="flaky", attempt=2, exit_code=0,
                           cause="forged", at=datetime.now(UTC), epoch=10**6)  # fmt: skip
    producer = Producer(deployment.kafka)
    producer.send(deployment.topics.events, failing, forged)
    producer.flush()
    [found] = check_log(deployment.kafka).divergences
    assert (found.instance_id, found.cause) == (failing, "forged") and "no input" in found.why
    refused = replay_check(deployment)
    assert refused.returncode == 1 and failing in refused.stdout
