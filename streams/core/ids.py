"""Derived identifiers (pure): ids are computed, never random, so replays agree."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

# The namespace of tideflow's name-based (uuid5) ids: the same name gives the same id everywhere.
TIDEFLOW_NS = uuid.UUID("6f1c2a8e-7d3b-5c44-9a1e-2b7f0c9d4e51")


def task_instance_id(instance_id: str, task_code: str, attempt: int) -> str:
    return f"{instance_id}/{task_code}/{attempt}"


def ack_command_id(instance_id: str, task_code: str, attempt: int, kind: str) -> str:
    """A worker's ack id: the same ack sent twice is recognised as one."""
    return f"{task_instance_id(instance_id, task_code, attempt)}/{kind}"


def tick_id(instance_id: str, at_iso: str) -> str:
    return f"tick/{instance_id}/{at_iso}"


def worker_lost_id(worker_id: str, incarnation_iso: str) -> str:
    """The cause of failing over the attempts of one lost worker process (its id and start
    time): every master and every replay names the same cause."""
    return f"worker-lost/{worker_id}/{incarnation_iso}"


def scheduled_instance_id(schedule_id: str, fire_time: datetime) -> str:
    """The instance a schedule's fire time starts: the same (schedule, fire time) gives the
    same id however often, and by whichever scheduler, it is fired, so it starts one
    instance. The time is taken as an instant (its UTC form), whatever zone it is given in."""
    if fire_time.tzinfo is None:
        raise ValueError("a fire time is an instant: give it a timezone")
    instant = fire_time.astimezone(UTC).isoformat()
    return str(uuid.uuid5(TIDEFLOW_NS, f"schedule/{schedule_id}@{instant}"))
