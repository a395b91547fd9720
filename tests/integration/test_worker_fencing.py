"""Worker-side epoch fencing on the real broker: a dispatch record whose owner epoch is below
one the worker has already seen for that instance partition comes from a master that lost
the partition, and is dropped (an assignment is not run, a kill is not obeyed). Other
partitions keep their own epochs."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from infra.settings import Settings
from infra.topics import provision
from streams.core.commands import ReportTaskFinished, ReportTaskStarted
from streams.core.enums import Outcome
from streams.kafka.partitioning import partition_for
from tests.integration.test_worker import acks, assign, dispatch, finished, kill_of
from tests.integration.worker_harness import Running, Tail

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(stack: Settings) -> Settings:
    tag = uuid.uuid4().hex[:10]
    fresh = stack.model_copy(
        update={
            "tideflow_topic_prefix": f"f{tag}.",
            "tideflow_worker_id": f"worker-{tag}",
            "tideflow_worker_slots": 4,
        }
    )
    provision(fresh)
    return fresh


def instance_on(settings: Settings, partition: int) -> str:
    """A fresh instance id whose commands (and so its owner epoch) live on `partition`."""
    while True:
        iid = f"i-{uuid.uuid4().hex[:8]}"
        if partition_for(iid, settings.tideflow_partitions) == partition:
            return iid


def test_an_assignment_with_an_epoch_below_one_seen_for_its_partition_is_not_run(
    settings: Settings, worker: Running, commands: Tail
) -> None:
    first = assign(settings, "true", instance_id=instance_on(settings, 0), epoch=2)
    stale = assign(settings, "true", instance_id=instance_on(settings, 0), epoch=1)
    elsewhere = assign(settings, "true", instance_id=instance_on(settings, 1), epoch=1)
    after = assign(settings, "true", instance_id=instance_on(settings, 0), epoch=2)

    dispatch(settings, first, stale, elsewhere, after)  # in this order, on one partition

    seen = commands.until(
        lambda s: all(finished(a.instance_id)(s) for a in (first, elsewhere, after))
    )
    assert acks(seen, stale.instance_id) == []  # read (`after` came behind it), not run
    for a in (first, elsewhere, after):
        assert [type(r) for r in acks(seen, a.instance_id)] == [
            ReportTaskStarted,
            ReportTaskFinished,
        ]


def test_a_kill_with_an_epoch_below_one_seen_for_its_partition_is_not_obeyed(
    settings: Settings, worker: Running, commands: Tail
) -> None:
    running = assign(settings, "sleep 30", instance_id=instance_on(settings, 2), epoch=3)
    dispatch(settings, running)
    commands.until(lambda s: bool(acks(s, running.instance_id)))  # started

    stale_kill = replace(kill_of(running), epoch=2)
    sentinel = assign(settings, "true", instance_id=instance_on(settings, 2), epoch=3)
    dispatch(settings, stale_kill, sentinel)
    seen = commands.until(finished(sentinel.instance_id))
    assert [type(r) for r in acks(seen, running.instance_id)] == [ReportTaskStarted]  # runs on

    dispatch(settings, replace(kill_of(running), epoch=3))
    done = acks(commands.until(finished(running.instance_id)), running.instance_id)[-1]
    assert done.outcome is Outcome.KILLED
