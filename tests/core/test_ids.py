"""Derived ids: their exact form is in the log (causes, acks), so it never changes."""

from __future__ import annotations

from streams.core.ids import ack_command_id, task_instance_id, tick_id, worker_lost_id


def test_a_task_instance_is_named_by_instance_task_and_attempt() -> None:
    assert task_instance_id("i-1", "load", 2) == "i-1/load/2"


def test_an_ack_is_named_by_its_attempt_and_kind() -> None:
    assert ack_command_id("i-1", "load", 2, "started") == "i-1/load/2/started"
    assert ack_command_id("i-1", "load", 2, "finished") == "i-1/load/2/finished"


def test_a_tick_is_named_by_its_instance_and_time() -> None:
    assert tick_id("i-1", "2026-01-01T00:00:00+00:00") == "tick/i-1/2026-01-01T00:00:00+00:00"


def test_a_lost_worker_process_is_named_by_worker_and_start_time() -> None:
    assert worker_lost_id("w1", "2026-01-01T00:00:00+00:00") == (
        "worker-lost/w1/2026-01-01T00:00:00+00:00"
    )
