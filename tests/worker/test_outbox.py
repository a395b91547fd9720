"""The outbox's batching, ordering, retries and shutdown, over a hand-written fake producer.

The fake's flush can be held on a gate, so "far fewer flushes than sends" is a certainty
here, not a race: everything sent while a flush is held goes out with the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from schemas.serde import decode
from streams.core.worker_messages import KillTask
from streams.kafka.errors import DeliveryFailed
from streams.worker.outbox import Outbox, OutboxClosed

AT = datetime(2024, 1, 1, tzinfo=UTC)
Sent = tuple[str, bytes | None, bytes | None, dict[str, str] | None]


class FakeProducer:
    """Records what was produced and each flush; fails the first `failures` flushes."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.produced: list[Sent] = []
        self.delivered: list[Sent] = []
        self.flushes = 0
        self.gate = threading.Event()
        self.gate.set()
        self.flushing = threading.Event()  # set while a flush is held on the gate
        self._failures = failures
        self._error = error or DeliveryFailed("broker said no")
        self._pending: list[Sent] = []

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.produced.append((topic, key, value, headers))
        self._pending.append((topic, key, value, headers))

    def flush(self, timeout: float = 30.0) -> None:
        self.flushes += 1
        self.flushing.set()
        self.gate.wait()
        self.flushing.clear()
        pending, self._pending = self._pending, []
        if self._failures:
            self._failures -= 1
            raise self._error
        self.delivered.extend(pending)


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def outbox(producer: FakeProducer) -> Iterator[Outbox]:
    box = Outbox(producer, backoff_s=0)
    yield box
    producer.gate.set()
    box.close()


def hold_next_flush(producer: FakeProducer, outbox: Outbox) -> None:
    """Send one record and return once its flush is held on the gate."""
    producer.gate.clear()
    outbox.send_raw("t", b"first", b"0")
    assert producer.flushing.wait(5)


def test_sends_from_several_threads_are_delivered_in_order_per_key_with_two_flushes(
    producer: FakeProducer, outbox: Outbox
) -> None:
    hold_next_flush(producer, outbox)

    def sender(key: bytes) -> None:
        for i in range(250):
            outbox.send_raw("t", key, str(i).encode())

    threads = [threading.Thread(target=sender, args=(f"k{n}".encode(),)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    producer.gate.set()

    assert outbox.wait(10)
    assert len(producer.delivered) == 1 + 4 * 250
    for n in range(4):
        values = [v for _, k, v, _ in producer.delivered if k == f"k{n}".encode()]
        assert values == [str(i).encode() for i in range(250)]
    assert producer.flushes == 2  # the held one, then everything queued behind it


def test_send_encodes_the_record_and_send_raw_keeps_bytes_and_headers(
    producer: FakeProducer, outbox: Outbox
) -> None:
    kill = KillTask(instance_id="i-1", task_code="t", attempt=1, worker_id="w", at=AT)
    outbox.send("dispatch", "w", kill)
    outbox.send_raw("dlq", None, b"\x00bad", headers={"tideflow.reason": "marker"})

    assert outbox.wait(5)
    (topic, key, value, _), dead = producer.delivered
    assert (topic, key, decode(value)) == ("dispatch", b"w", kill)
    assert dead == ("dlq", None, b"\x00bad", {"tideflow.reason": "marker"})


def test_wait_returns_false_while_the_flush_is_held_and_true_once_delivered(
    producer: FakeProducer, outbox: Outbox
) -> None:
    hold_next_flush(producer, outbox)

    assert not outbox.wait(0.05)
    assert outbox.pending() == 1

    producer.gate.set()
    assert outbox.wait(5)
    assert outbox.pending() == 0


def test_wait_with_nothing_enqueued_returns_true_at_once(outbox: Outbox) -> None:
    assert outbox.wait(0)


def test_failed_delivery_is_sent_again_whole_until_it_succeeds() -> None:
    producer = FakeProducer(failures=2)
    outbox = Outbox(producer, backoff_s=0)
    outbox.send_raw("t", b"k", b"started")
    outbox.send_raw("t", b"k", b"finished")

    assert outbox.wait(5)
    outbox.close()

    assert producer.flushes == 3
    assert [v for _, _, v, _ in producer.delivered] == [b"started", b"finished"]
    assert [v for _, _, v, _ in producer.produced] == [b"started", b"finished"] * 3


def test_a_batch_failing_every_try_is_given_up_and_later_sends_still_go_out() -> None:
    producer = FakeProducer(failures=3)
    outbox = Outbox(producer, tries=3, backoff_s=0)
    outbox.send_raw("t", b"k", b"lost")

    assert not outbox.wait(5)  # given up after 3 tries
    assert producer.flushes == 3

    outbox.send_raw("t", b"k", b"next")
    assert outbox.wait(5)  # the lost record was settled before this call
    outbox.close()
    assert [v for _, _, v, _ in producer.delivered] == [b"next"]


def test_an_unexpected_error_does_not_stop_the_outbox_thread() -> None:
    producer = FakeProducer(failures=2, error=RuntimeError("bug"))
    outbox = Outbox(producer, tries=2, backoff_s=0)
    outbox.send_raw("t", b"k", b"lost")

    assert not outbox.wait(5)

    outbox.send_raw("t", b"k", b"next")
    assert outbox.wait(5)
    outbox.close()
    assert [v for _, _, v, _ in producer.delivered] == [b"next"]


def test_close_delivers_everything_queued_then_refuses_new_records(
    producer: FakeProducer,
) -> None:
    outbox = Outbox(producer, backoff_s=0)
    hold_next_flush(producer, outbox)
    for i in range(100):
        outbox.send_raw("t", b"k", str(i).encode())
    closer = threading.Thread(target=outbox.close)
    closer.start()

    producer.gate.set()
    closer.join(10)

    assert not closer.is_alive()
    assert len(producer.delivered) == 101
    assert outbox.pending() == 0
    with pytest.raises(OutboxClosed):
        outbox.send_raw("t", b"k", b"late")
    outbox.close()  # a second close is harmless
