"""Time travel: an instance as of an offset or a time, folded from the events log, with the
core's rules (a fenced zombie's event is no fact), through the CLI's and API's service."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.time_travel import InvalidPoint, Point, instance_at
from infra import compose
from infra.settings import Settings
from streams.core.events import PartitionTakenOver, TaskFailed, WorkflowSucceeded
from streams.kafka.partitioning import partition_for
from streams.kafka.producer import Producer
from tests.integration.helpers import cli
from tests.integration.test_projections import Log, at

pytestmark = pytest.mark.integration


@pytest.fixture
def written(deployment: Settings) -> Settings:
    """Given: an instance whose first attempt failed and second succeeded, a takeover of its
    partition in between, and an event the fenced owner wrote after it."""
    log = Log("i-tt").started().ran("extract", 1)
    log.add(TaskFailed, task_code="extract", attempt=1, exit_code=1, reason="exit 1",
            retry_at=at(5))  # fmt: skip
    early = len(log.events)
    log.ran("extract", 2).succeeded("extract", 2)
    producer = Producer(deployment.kafka)
    events = deployment.topics.events
    partition = partition_for("i-tt", deployment.tideflow_partitions)
    for event in log.events[:early]:
        producer.send(events, "i-tt", event)
    taken = PartitionTakenOver(partition=partition, owner="m2", epoch=1, events_offset=0,
                               at=at(early))  # fmt: skip
    producer.send(events, f"partition/{partition}", taken, partition=partition)
    zombie = TaskFailed(instance_id="i-tt", task_code="extract", attempt=2, exit_code=9,
                        reason="zombie", cause="z", at=at(early), epoch=0)  # fmt: skip
    producer.send(events, "i-tt", zombie)
    for event in log.events[early:]:
        producer.send(events, "i-tt", replace(event, epoch=1))
    producer.send(events, "i-tt", WorkflowSucceeded(instance_id="i-tt", cause="c", at=at(60),
                                                    epoch=1))  # fmt: skip
    producer.flush()
    return deployment


def test_the_instance_as_of_a_time_and_an_offset_is_the_fold_of_the_log_up_to_there(
    written: Settings,
) -> None:
    kafka, topic = written.kafka, written.topics.events
    final = instance_at(kafka, topic, "i-tt", Point(offset=10**9))
    assert final is not None and final["state"] == "SUCCESS"
    assert [(a["attempt"], a["state"]) for a in final["attempts"]] == [
        (1, "FAILURE"), (2, "SUCCESS")
    ]  # fmt: skip
    assert len(final["fenced_offsets"]) == 1  # the zombie's TaskFailed is not a fact
    assert final["requests"][0]["requested_by"] == "cli"

    then = instance_at(kafka, topic, "i-tt", Point(at=at(3) + timedelta(milliseconds=1)))
    assert then is not None and then["state"] == "RUNNING_EXECUTION"
    assert [(a["attempt"], a["state"]) for a in then["attempts"]] == [(1, "FAILURE")]
    by_offset = instance_at(kafka, topic, "i-tt", Point(offset=then["as_of"]["offset"]))
    assert by_offset == then

    assert instance_at(kafka, topic, "i-tt", Point(at=at(-1))) is None
    assert instance_at(kafka, topic, "i-never", Point(offset=10**9)) is None


def test_points_are_offsets_or_times_and_anything_else_is_refused() -> None:
    assert Point.parse(" 42 ") == Point(offset=42)
    assert Point.parse("2024-05-01T02:00:03").at == at(3)
    with pytest.raises(InvalidPoint, match=r"an offset .* or an ISO time"):
        Point.parse("yesterday")


def test_api_and_cli_travel_in_time(written: Settings) -> None:
    client = TestClient(compose.http_app(written))
    answered = client.get("/instances/i-tt/as-of", params={"at": "2024-05-01T02:00:03.5"})
    assert answered.status_code == 200 and answered.json()["state"] == "RUNNING_EXECUTION"
    assert client.get("/instances/i-tt/as-of", params={"at": "soon"}).status_code == 422
    assert client.get("/instances/i-nope/as-of", params={"at": "5"}).status_code == 404

    shown = cli(written, "history", "i-tt", "--at", "2024-05-01T02:00:03.5")
    assert "RUNNING_EXECUTION" in shown and "requested by cli" in shown
