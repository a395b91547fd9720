"""Real parts for integration tests: one local stack (Tansu + PostgreSQL) per session, and a
fresh deployment (topic prefix + database schema) per test, so tests never see each
other's records. Set KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL to run against other servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import Settings
from infra.stack import LocalStack
from tests.integration.worker_harness import Running, Tail


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    with LocalStack(Settings()) as settings:
        yield settings


def fresh_settings(stack: Settings, **overrides: object) -> Settings:
    """Settings of an isolated deployment on the shared stack."""
    tag = uuid.uuid4().hex[:10]
    return stack.model_copy(
        update={
            "tideflow_topic_prefix": f"t{tag}.",
            "tideflow_db_schema": f"t_{tag}",
            **overrides,
        }
    )


@pytest.fixture
def deployment(stack: Settings) -> Settings:
    """A provisioned, migrated, isolated deployment (no processes running)."""
    settings = fresh_settings(stack)
    prepare(settings)
    return settings


@pytest.fixture
def fleet(deployment: Settings, tmp_path: Path) -> Iterator[Fleet]:
    """Processes of `deployment` started by the test; all stopped at its end. Their logs
    are in tmp_path/logs."""
    with Fleet(deployment, log_dir=tmp_path / "logs") as f:
        yield f


@pytest.fixture
def worker(settings: Settings) -> Iterator[Running]:
    """A worker of the module's `settings` deployment, on a thread; halted at the end."""
    running = Running(settings)
    yield running
    running.halt()


@pytest.fixture
def commands(settings: Settings) -> Iterator[Tail]:
    """Everything on the commands topic of the module's `settings` deployment."""
    tail = Tail(settings, settings.topics.commands)
    yield tail
    tail.close()
