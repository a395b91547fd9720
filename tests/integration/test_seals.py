"""Tamper evidence: seals over the events log verify while the log is as sealed, and name the
partition when a record below a seal was rewritten or the log was cut short."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from infra.settings import Settings
from infra.topics import delete_topics, provision
from projections.seals import seal, verify
from streams.kafka.producer import Producer
from tests.integration.test_projections import Log, scenarios

pytestmark = pytest.mark.integration


def write(settings: Settings, logs: list[Log]) -> None:
    producer = Producer(settings.kafka)
    for log in logs:
        for event in log.events:
            producer.send(settings.topics.events, log.instance_id, event)
    producer.flush()


def audit(settings: Settings, what: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", "audit", what],
        env={**os.environ, **settings.to_env(), "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_seals_verify_an_unchanged_log_and_name_a_rewritten_one(deployment: Settings) -> None:
    logs = scenarios()
    write(deployment, logs[:3])
    first = seal(deployment.kafka, deployment.db, datetime.now(UTC))
    assert first and all(s.topic == "events" for s in first)
    write(deployment, logs[3:])
    second = seal(deployment.kafka, deployment.db, datetime.now(UTC))
    assert second and seal(deployment.kafka, deployment.db, datetime.now(UTC)) == []
    assert verify(deployment.kafka, deployment.db) == (len(first) + len(second), [])
    sealed = audit(deployment, "verify")
    assert sealed.returncode == 0 and "0 broken" in sealed.stdout, sealed.stdout + sealed.stderr

    # Someone rewrites the log: the same records, but one failure reads as a success.
    delete_topics(deployment)
    provision(deployment)
    edited = scenarios()
    failed = edited[3]
    failed.events[-1] = replace(failed.events[-1], reason="nothing failed")
    write(deployment, edited)

    checked, broken = verify(deployment.kafka, deployment.db)
    assert checked == len(first) + len(second)
    assert [b.seal.topic for b in broken] == ["events"] and broken[0].found_digest is not None
    refused = audit(deployment, "verify")
    assert refused.returncode == 1 and "1 broken" in refused.stdout


def test_a_log_cut_short_below_a_seal_is_named(deployment: Settings) -> None:
    logs = scenarios()
    write(deployment, logs)
    sealed = seal(deployment.kafka, deployment.db, datetime.now(UTC))

    delete_topics(deployment)
    provision(deployment)
    write(deployment, logs[:1])  # the others' records are gone

    _, broken = verify(deployment.kafka, deployment.db)
    assert broken and all(b.found_digest is None or b.seal in sealed for b in broken)
    assert any("of its" in b.detail for b in broken)
