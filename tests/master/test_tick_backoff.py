"""A time-driven decision that raised holds its instance back (streams/master/tick_backoff.py):
1 s after the first failure, doubling up to five minutes, released by a success, forgotten
with its partition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.master.tick_backoff import MAX_DELAY_S, TickBackoff

NOW = datetime(2026, 1, 1, tzinfo=UTC)
X, Y = (0, "x"), (1, "y")


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_nothing_failing_holds_nothing_and_nothing_is_due() -> None:
    b = TickBackoff()
    assert not b.holds(X, NOW)
    assert b.due(at(1_000)) == []
    assert len(b) == 0


def test_a_failure_holds_the_instance_for_one_second_then_it_is_due() -> None:
    b = TickBackoff()

    failing = b.failed(X, NOW)

    assert (failing.failures, failing.retry_at) == (1, at(1))
    assert b.holds(X, at(0.999))
    assert b.due(at(0.999)) == []
    assert not b.holds(X, at(1))
    assert b.due(at(1)) == [X]
    assert not b.holds(Y, at(0.5))  # only the failing instance is held


def test_each_failure_in_a_row_doubles_the_delay_up_to_the_cap() -> None:
    b = TickBackoff()
    delays = []
    now = NOW
    for _ in range(12):
        failing = b.failed(X, now)
        delays.append((failing.retry_at - now).total_seconds())
        now = failing.retry_at
    assert delays[:5] == [1, 2, 4, 8, 16]
    assert max(delays) == MAX_DELAY_S == delays[-1]


def test_a_success_releases_the_instance_and_the_next_failure_starts_over() -> None:
    b = TickBackoff()
    b.failed(X, NOW)
    b.failed(X, at(1))

    b.succeeded(X)

    assert not b.holds(X, at(1.5))
    assert b.due(at(10)) == []
    assert b.failed(X, at(2)).retry_at == at(3)


def test_due_lists_the_oldest_retry_first() -> None:
    b = TickBackoff()
    b.failed(Y, at(0.5))
    b.failed(X, NOW)
    assert b.due(at(5)) == [X, Y]


def test_a_revoked_partition_is_forgotten() -> None:
    b = TickBackoff()
    b.failed(X, NOW)
    b.failed(Y, NOW)

    b.drop_partition(0)

    assert b.due(at(5)) == [Y]
    assert not b.holds(X, at(0.5))
