"""The dead-letter topic: records a consumer cannot decode or apply, with the reason.

The original key and value are kept byte for byte; headers say why and where it came from.
"""

from __future__ import annotations

import logging

from confluent_kafka import Message

from streams.kafka.producer import RawSender

log = logging.getLogger("tideflow.deadletter")


def dead_letter(producer: RawSender, topic: str, msg: Message, reason: str) -> None:
    """Send `msg` to the dead-letter `topic`; delivering it (flush, or wait) is the caller's."""
    log.warning("dead-lettering %s[%s]@%s: %s", msg.topic(), msg.partition(), msg.offset(), reason)
    producer.send_raw(
        topic,
        msg.key(),
        msg.value(),
        headers={
            "tideflow.reason": reason,
            "tideflow.topic": str(msg.topic()),
            "tideflow.partition": str(msg.partition()),
            "tideflow.offset": str(msg.offset()),
        },
    )
