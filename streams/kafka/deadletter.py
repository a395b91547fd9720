"""The dead-letter topic: records a consumer cannot decode or apply, with the reason.

The original key and value are kept byte for byte; headers say why and where it came from.
"""

from __future__ import annotations

import logging
from typing import Protocol

from confluent_kafka import Message

from infra.settings import Settings

log = logging.getLogger("tideflow.deadletter")


class RawSender(Protocol):
    """Anything that sends raw bytes: a `Producer`, or the worker's `Outbox`."""

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None: ...


def dead_letter(producer: RawSender, settings: Settings, msg: Message, reason: str) -> None:
    """Send `msg` to the dead-letter topic; delivering it (flush, or wait) is the caller's."""
    log.warning("dead-lettering %s[%s]@%s: %s", msg.topic(), msg.partition(), msg.offset(), reason)
    producer.send_raw(
        settings.topics.dead_letter,
        msg.key(),
        msg.value(),
        headers={
            "tideflow.reason": reason,
            "tideflow.topic": str(msg.topic()),
            "tideflow.partition": str(msg.partition()),
            "tideflow.offset": str(msg.offset()),
        },
    )
