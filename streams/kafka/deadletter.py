"""The dead-letter topic: records a consumer cannot decode or apply, with the reason.

The original key and value are kept byte for byte; headers say why and where it came from
(`tideflow.reason`, `.topic`, `.partition`, `.offset`; for an exception also `.exception`,
`.error` and the `.instance_id` it was for). A failure with no input record (a master's
tick that raised) is recorded with an empty value and the same headers.
"""

from __future__ import annotations

import logging

from confluent_kafka import Message

from streams.kafka.producer import RawSender

log = logging.getLogger("tideflow.deadletter")


def dead_letter(
    producer: RawSender,
    topic: str,
    msg: Message,
    reason: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Send `msg` to the dead-letter `topic`; delivering it (flush, or wait) is the caller's.
    `headers` adds to the standard ones (e.g. `exception_headers`)."""
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
            **(headers or {}),
        },
    )


def dead_letter_failure(
    producer: RawSender, topic: str, key: str, reason: str, headers: dict[str, str]
) -> None:
    """Record a failure that has no input record to keep (a time-driven decision that
    raised): an empty value under `key`, the reason, and `headers` saying where."""
    log.warning("dead-lettering a failure for %s: %s", key, reason)
    producer.send_raw(topic, key.encode(), None, headers={"tideflow.reason": reason, **headers})


def exception_headers(exc: BaseException, instance_id: str | None = None) -> dict[str, str]:
    """Headers naming an exception raised while applying a record (and the instance it was
    for): `tideflow.exception` (the type), `tideflow.error` (the message)."""
    out = {"tideflow.exception": type(exc).__qualname__, "tideflow.error": str(exc)[:1000]}
    if instance_id is not None:
        out["tideflow.instance_id"] = instance_id
    return out
