"""The dead-letter topic: records a consumer cannot decode or apply, with the reason.

The original key and value are kept byte for byte; headers say why and where it came from.
"""

from __future__ import annotations

import logging

from confluent_kafka import Message

from infra.settings import Settings
from streams.kafka.producer import Producer

log = logging.getLogger("tideflow.deadletter")


def dead_letter(producer: Producer, settings: Settings, msg: Message, reason: str) -> None:
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
