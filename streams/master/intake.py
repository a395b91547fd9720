"""One command record, from bytes to applied decision: decode, check its partition, decide.

Every record ends one of four ways, and none stops the master:

* decided: the events are appended and applied (`decisions`, `appender`);
* undecodable: dead-lettered with the decoder's reason;
* on the wrong partition: forwarded to its own (`forwarding`);
* poison, i.e. deciding it raised (a bug in the core): dead-lettered with the exception,
  its origin and the instance id in headers, and a `CommandRejected` INTERNAL_ERROR
  appended on the instance so its history shows it. Its offset is then committed like any
  other's: the next owner does not meet it again. Should it be redelivered all the same (a
  crash before the commit), the rejection folded into the instance marks the command as
  decided, and it is skipped without a second record.

Exceptions are caught here, per record, at the runtime edge (STYLE.md section 6); the core
never catches. Delivery errors of the producer are not caught: a failed flush stops the
step, and the commands are decided again from the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from confluent_kafka import Message

from schemas.catalog import COMMANDS
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.core.commands import Command
from streams.core.events import CommandRejected
from streams.core.placement import Workers
from streams.core.rejections import Reason
from streams.kafka.deadletter import dead_letter, exception_headers
from streams.kafka.partitioning import partition_for
from streams.kafka.producer import Producer
from streams.kafka.topics import Topics
from streams.master.appender import Appender
from streams.master.decisions import Decider, stage
from streams.master.forwarding import Forwarder
from streams.master.partitions import PartitionState

log = logging.getLogger("tideflow.master")

MESSAGE_MAX = 500  # characters of an exception's text kept in a rejection's message


class Intake:
    def __init__(
        self,
        *,
        producer: Producer,
        topics: Topics,
        partitions: int,
        owned: set[int],
        partition: Callable[[int], PartitionState],
        live: Callable[[datetime], Workers],
        decide: Decider,
        appender: Appender,
        ack_timeout: timedelta,
    ) -> None:
        self._producer = producer
        self._dead_letter = topics.dead_letter
        self._partitions = partitions
        self._owned = owned  # the master's set, kept current by its rebalance callbacks
        self._partition = partition
        self._live = live
        self._decide = decide
        self._appender = appender
        self._ack_timeout = ack_timeout
        self._forwarder = Forwarder(producer, topics)

    def handle(self, msg: Message, now: datetime) -> None:
        p = msg.partition()
        if msg.error() or p is None:
            if msg.error():
                log.warning("consume error: %s", msg.error())
            return
        if p not in self._owned:
            return  # revoked while this batch was in flight
        command = self._decode(msg)
        if command is None:
            return
        expected = partition_for(command.instance_id, self._partitions)
        if expected != p:  # its events would split the instance across two owners
            self._forwarder.forward(msg, command.instance_id, expected)
            return
        part = self._partition(p)
        state = part.get(command.instance_id)
        workers = self._live(now)  # per command: earlier ones took slots
        try:
            events = self._decide(state, command, now, workers)
            decision = stage(state, events, part.epoch, now, self._ack_timeout)
        except Exception as exc:  # a bug in the core: recorded, never fatal (see above)
            self._poisoned(msg, command, part, exc, now)
            return
        self._appender.apply(part, decision)

    def _decode(self, msg: Message) -> Command | None:
        try:
            command: Command = expect(msg.value(), COMMANDS)
            return command
        except DecodeError as exc:
            dead_letter(self._producer, self._dead_letter, msg, str(exc))
        except Exception as exc:  # the decoder's own bug: this record only
            log.error("decoding %s raised", _where(msg), exc_info=exc)
            reason = f"decoding raised {type(exc).__name__}: {exc}"
            dead_letter(self._producer, self._dead_letter, msg, reason, exception_headers(exc))
        return None

    def _poisoned(
        self, msg: Message, command: Command, part: PartitionState, exc: Exception, now: datetime
    ) -> None:
        """Dead-letter the command and reject it as INTERNAL_ERROR on its instance."""
        kind, where = type(command).__name__, _where(msg)
        state = part.get(command.instance_id)
        if command.command_id in state.applied:
            log.warning(
                "deciding %s %s (%s) raised %s again; it was decided before: skipped",
                kind, command.command_id, where, type(exc).__name__,
            )  # fmt: skip
            return
        log.error(
            "deciding %s %s for %s (%s) raised; dead-lettered, rejected as INTERNAL_ERROR",
            kind, command.command_id, command.instance_id, where, exc_info=exc,
        )  # fmt: skip
        found = f"{type(exc).__name__}: {exc}"[:MESSAGE_MAX]
        dead_letter(
            self._producer,
            self._dead_letter,
            msg,
            f"deciding {kind} raised {found}",
            exception_headers(exc, command.instance_id),
        )
        rejected = CommandRejected(
            instance_id=command.instance_id,
            command_id=command.command_id,
            command_type=kind,
            reason=Reason.INTERNAL_ERROR,
            message=f"expected a decision, found {found} (dead-lettered from {where})",
            at=now,
        )
        try:
            decision = stage(state, [rejected], part.epoch, now, self._ack_timeout)
        except Exception:  # the instance's state itself trips the core: the dead letter stays
            log.exception("the rejection of %s could not be staged", command.command_id)
            return
        self._appender.apply(part, decision)


def _where(msg: Message) -> str:
    return f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
