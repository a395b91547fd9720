"""When attempts are checked against worker liveness: a sweep every second, and at once for
a worker newly lost."""

from __future__ import annotations

from streams.master.worker_checks import WorkerChecks


def test_the_sweep_runs_first_then_every_interval() -> None:
    checks = WorkerChecks(every_s=1.0)

    assert checks.due(10.0, [])
    assert not checks.due(10.5, [])
    assert checks.due(11.0, [])


def test_a_newly_lost_worker_is_checked_at_once_and_only_once() -> None:
    checks = WorkerChecks(every_s=1.0)
    checks.due(10.0, [])

    assert checks.due(10.1, [("w1", "incarnation-1")])
    assert not checks.due(10.2, [("w1", "incarnation-1")])  # handled by that check
    assert checks.due(10.3, [("w1", "incarnation-1"), ("w2", "incarnation-1")])
    assert checks.due(11.3, [("w1", "incarnation-1")])  # the sweep, still


def test_a_worker_lost_again_after_it_came_back_is_checked_again() -> None:
    checks = WorkerChecks(every_s=1.0)
    checks.due(10.0, [("w1", "a")])
    checks.due(10.1, [])  # it heartbeats again

    assert checks.due(10.2, [("w1", "a")])
