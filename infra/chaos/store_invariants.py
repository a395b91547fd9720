"""Invariants checked on what PostgreSQL holds against the log: the read models equal a fresh
fold of the unfenced events, and the event archive holds every record once, as logged."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from infra.chaos.records import (
    MAX_EVIDENCE,
    ArchiveRow,
    EventLog,
    Violation,
    describe,
    evidence_of,
)


def check_read_model(
    log: EventLog, instances: Mapping[str, Mapping[str, Any] | None]
) -> list[Violation]:
    """PostgreSQL's rows (`projections.queries.get_instance` per instance) against the fold."""
    out: list[Violation] = []
    for iid, row in sorted(instances.items()):
        state = log.state(iid)
        history = log.by_instance.get(iid, [])
        if row is None:
            if state.exists:
                out.append(
                    Violation(
                        "read-model",
                        iid,
                        "in the log, missing in PostgreSQL",
                        evidence_of(history[:3]),
                    )
                )
            continue
        if not state.exists:
            out.append(Violation("read-model", iid, "in PostgreSQL, not in the log"))
            continue
        assert state.state is not None
        problems: list[str] = []
        if row.get("state_code") != state.state.value:
            problems.append(
                f"instance: PostgreSQL {row.get('state')}({row.get('state_code')}), "
                f"log {state.state.name}({state.state.value})"
            )
        valid = {t["task_code"]: t for t in row.get("tasks", [])}
        for code in sorted(set(valid) | set(state.tasks)):
            run, db = state.tasks.get(code), valid.get(code)
            if run is None or db is None:
                problems.append(f"task {code}: only in {'the log' if db is None else 'PostgreSQL'}")
                continue
            if db["attempt"] != run.attempt or db["state_code"] != run.state.value:
                problems.append(
                    f"task {code}: PostgreSQL #{db['attempt']} {db['state']}, "
                    f"log #{run.attempt} {run.state.name}"
                )
        rows = {(t["task_code"], t["attempt"]): t for t in row.get("attempts", [])}
        logged = {(c, n): a for (i, c, n), a in log.attempts.items() if i == iid and a.dispatched}
        for key in sorted(set(rows) | set(logged)):
            db, a = rows.get(key), logged.get(key)
            code, n = key
            if a is None:
                problems.append(f"attempt {code}#{n}: a row in PostgreSQL, no dispatch in the log")
            elif db is None:
                problems.append(f"attempt {code}#{n}: dispatched in the log, no row in PostgreSQL")
            elif a.state is not None and db["state_code"] != a.state.value:
                problems.append(f"attempt {code}#{n}: PostgreSQL {db['state']}, log {a.state.name}")
        if problems:
            fenced = [r for r in log.fenced if getattr(r.event, "instance_id", None) == iid]
            out.append(
                Violation(
                    "read-model", iid, "; ".join(problems), evidence_of([*history[-6:], *fenced])
                )
            )
    return out


def check_archive(log: EventLog, rows: Sequence[ArchiveRow]) -> list[Violation]:
    """The event archive against the log, for offsets below the end of what was read."""
    out: list[Violation] = []
    ends = log.ends()
    rows = [r for r in rows if r.offset < ends.get(r.partition, 0)]
    by_pos: dict[tuple[int, int], list[ArchiveRow]] = defaultdict(list)
    for row in rows:
        by_pos[(row.partition, row.offset)].append(row)
    for (p, o), found in sorted(by_pos.items()):
        if len(found) > 1:
            out.append(
                Violation("applied-twice", f"events[{p}]@{o}", f"archived {len(found)} times")
            )
    decodable = {(r.partition, r.offset): r for r in log.records if r.event is not None}
    missing = [r for pos, r in sorted(decodable.items()) if pos not in by_pos]
    if missing:
        out.append(
            Violation(
                "applied-twice",
                "event_archive",
                f"{len(missing)} events of the log not archived (lost rows)",
                evidence_of(missing),
            )
        )
    extra = sorted(pos for pos in by_pos if pos not in decodable)
    if extra:
        out.append(
            Violation(
                "applied-twice",
                "event_archive",
                f"{len(extra)} archived rows at positions the log has no event at",
                tuple(f"events[{p}]@{o}" for p, o in extra[:MAX_EVIDENCE]),
            )
        )
    differ = []
    for pos, found in sorted(by_pos.items()):
        r = decodable.get(pos)
        if r is None:
            continue
        row = found[0]
        epoch = getattr(r.event, "epoch", None)
        if (row.event_type, row.instance_id, row.epoch) != (
            type(r.event).__name__,
            getattr(r.event, "instance_id", None),
            epoch,
        ):
            differ.append(
                f"{describe(r)} archived as {row.event_type} {row.instance_id} epoch={row.epoch}"
            )
    if differ:
        out.append(
            Violation(
                "applied-twice",
                "event_archive",
                f"{len(differ)} archived rows differ from the log",
                tuple(differ[:MAX_EVIDENCE]),
            )
        )
    log_counts = Counter(p for p, _ in decodable)
    archive_counts = Counter(row.partition for row in rows)
    for p in sorted(set(log_counts) | set(archive_counts)):
        if log_counts[p] != archive_counts[p]:
            out.append(
                Violation(
                    "applied-twice",
                    f"events[{p}]",
                    f"archive holds {archive_counts[p]} rows, the log "
                    f"{log_counts[p]} decodable events",
                )
            )
    return out
