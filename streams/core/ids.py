"""Derived identifiers (pure): ids are computed, never random, so replays agree."""

from __future__ import annotations


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
