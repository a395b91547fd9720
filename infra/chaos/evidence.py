"""What a chaos run reads back to check: the event log, dead letters, the read models and the
projector's checkpoints, and the instances still unfinished in the log."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from infra.chaos.measure import owner_pid
from infra.chaos.records import ArchiveRow, DeadLetter, EventLog, LogRecord
from infra.settings import Settings
from projections import queries
from schemas.catalog import EVENTS
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.kafka.reader import read_to_end
from streams.postgres.connection import connect


def read_log(settings: Settings) -> list[LogRecord]:
    out = []
    for msg in read_to_end(settings.kafka, settings.topics.events, timeout_s=60):
        p, o, key = msg.partition(), msg.offset(), msg.key()
        assert p is not None and o is not None
        k = None if key is None else key.decode(errors="replace")
        try:
            out.append(LogRecord(p, o, expect(msg.value(), EVENTS), k))
        except DecodeError as exc:
            out.append(LogRecord(p, o, None, k, str(exc)))
    return out


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def read_dead_letters(settings: Settings) -> list[DeadLetter]:
    out = []
    for msg in read_to_end(settings.kafka, settings.topics.dead_letter, timeout_s=60):
        h = {str(k): _text(v) for k, v in list(msg.headers() or [])}
        out.append(
            DeadLetter(
                h.get("tideflow.topic", "?"),
                h.get("tideflow.partition", "?"),
                h.get("tideflow.offset", "?"),
                msg.value(),
                h.get("tideflow.reason", "?"),
            )
        )
    return out


def projected(settings: Settings) -> dict[int, int]:
    """The projector's checkpoint (next offset) per events partition."""
    with connect(settings.db) as conn:
        rows = conn.execute(
            "SELECT partition, next_offset FROM projector_checkpoints"
            " WHERE consumer = 'projector' AND topic = %s",
            (settings.topics.events,),
        ).fetchall()
    return {int(p): int(n) for p, n in rows}


def read_models(
    settings: Settings, instance_ids: Sequence[str]
) -> tuple[dict[str, dict[str, Any] | None], list[ArchiveRow]]:
    with connect(settings.db) as conn:
        rows = {iid: queries.get_instance(conn, iid) for iid in instance_ids}
        archive = [
            ArchiveRow(int(p), int(o), str(t), i, None if e is None else int(e))
            for p, o, t, i, e in conn.execute(
                'SELECT partition, "offset", event_type, instance_id, epoch FROM event_archive'
                " WHERE topic = 'events'"
            ).fetchall()
        ]
    return rows, archive


def unfinished(log: EventLog, started: Sequence[str]) -> list[str]:
    out = []
    for iid in started:
        state = log.state(iid).state
        if state is None or not state.finished:
            out.append(iid)
    return out


def facts_of(log: EventLog, started: Sequence[str]) -> int:
    return sum(len(log.by_instance.get(iid, ())) for iid in started)


def unowned_partitions(log: EventLog, partitions: int, masters: set[int]) -> list[int]:
    """Partitions whose latest takeover names no running master (or that have none)."""
    owner: dict[int, int | None] = {}
    for r in log.takeovers:
        owner[r.partition] = owner_pid(r.event.owner)
    return [p for p in range(partitions) if owner.get(p) not in masters]


def consistent_read(
    settings: Settings, started: Sequence[str], say: Callable[[str], None]
) -> tuple[list[LogRecord], dict[str, dict[str, Any] | None], list[ArchiveRow]]:
    """The log, and the read models once the projector has caught up with it; read again
    while the instances' facts keep changing (at most 3 times)."""
    records = read_log(settings)
    rows: dict[str, dict[str, Any] | None] = {}
    archive: list[ArchiveRow] = []
    for _ in range(3):
        log = EventLog(records)
        ends = log.ends()
        deadline = time.monotonic() + 60
        while True:
            try:
                done = projected(settings)
            except Exception as exc:  # PostgreSQL may still be coming back
                say(f"checkpoints unreadable: {exc}")
                done = {}
            if all(done.get(p, 0) >= n for p, n in ends.items()):
                break
            if time.monotonic() >= deadline:
                behind = {p: (done.get(p, 0), n) for p, n in ends.items()}
                say(f"projector still behind the log after 60s: {behind}")
                break
            time.sleep(0.3)
        rows, archive = read_models(settings, started)
        again = read_log(settings)
        if facts_of(EventLog(again), started) == facts_of(log, started):
            return records, rows, archive
        records = again
    return records, rows, archive
