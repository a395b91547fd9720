"""The writes of one batch, gathered by the handlers and sent as a few statements at flush.

Instance and task rows are coalesced: every change to a row merges into one pending change
(an upsert, which overwrites every column, or an update of some columns, a no-op when the
row does not exist), so a row hit by ten events in a batch is written once, with the value
each column had after the last of them, exactly as applying the events one by one leaves it.
Archive rows go out in one INSERT. Rows travel as one JSON document per statement, read
with `jsonb_populate_recordset` and so typed by the table itself; updates find their rows
through the primary key (nested loop over the index once a table is large).

Coalescing must not hide a value the database would refuse (an exit code past int4): every
change of the batch, merged or not, is converted to its table's row type once before the
writes, so a refused value refuses the batch whatever else is in it, and the caller falls
back to one record at a time (batch.py). An out-of-range value thus refuses its record
even when the row it targets does not exist.

Writes to other tables (definitions, rejections, workers, owners) are rare and go out as
they come (`execute`). No statement here reads a table another one writes, so their order
between tables does not matter. It never commits.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from psycopg import Cursor

Cur = Cursor[Any]
Row = dict[str, Any]

# The coalesced tables and their key columns (sql/001_read_models.sql).
KEYS: Final[dict[str, str]] = {
    "workflow_instances": "instance_id",
    "task_instances": "task_instance_id",
}


@dataclass(slots=True)
class _Pending:
    upsert: bool
    values: Row


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()  # timestamptz reads it back to the same microsecond
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json(rows: list[Row]) -> str:
    return json.dumps(rows, default=_json_default)


def _quoted(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _insert_sql(table: str, columns: tuple[str, ...], conflict: str) -> str:
    cols = _quoted(columns)
    return (
        f"INSERT INTO {table} ({cols}) SELECT {cols}"
        f" FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) ON CONFLICT {conflict}"
    )


def _upsert_sql(table: str, columns: tuple[str, ...]) -> str:
    key = KEYS[table]
    sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c != key)
    return _insert_sql(table, columns, f'("{key}") DO UPDATE SET {sets}')


def _update_sql(table: str, columns: tuple[str, ...]) -> str:
    key = KEYS[table]
    sets = ", ".join(f'"{c}" = r."{c}"' for c in columns if c != key)
    return (
        f"UPDATE {table} SET {sets} FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) r"
        f' WHERE {table}."{key}" = r."{key}"'
    )


_INVALIDATE_SQL: Final = (
    "UPDATE task_instances SET valid = false WHERE instance_id = ANY(%s::text[]) AND valid"
)

_SUPERSEDE_SQL: Final = (
    "UPDATE task_instances t SET valid = false"
    " FROM jsonb_to_recordset(%s::jsonb) AS r(instance_id text, task_code text, attempt integer)"
    " WHERE t.instance_id = r.instance_id AND t.task_code = r.task_code"
    " AND t.attempt <> r.attempt AND t.valid"
)


class Changes:
    """Pending writes of a batch (or of one record, when a batch was refused)."""

    def __init__(self, cur: Cur) -> None:
        self.cur = cur
        self._reset()

    def _reset(self) -> None:
        self._archive: list[Row] = []
        self._rows: dict[str, dict[Any, _Pending]] = {table: {} for table in KEYS}
        self._seen: dict[str, list[Row]] = {table: [] for table in KEYS}
        self._current: dict[tuple[str, str], int] = {}  # (instance, task) -> valid attempt
        self._invalidated: list[str] = []  # instances rerun: every earlier attempt invalid

    def execute(self, query: str, params: Row) -> None:
        """A write to a table that is not coalesced, sent now (pipeline mode: no wait)."""
        self.cur.execute(query, params)

    def archive(self, row: Row) -> None:
        """An event_archive row; a row already there (same position) is left as it is."""
        self._archive.append(row)

    def upsert(self, table: str, row: Row) -> None:
        """Insert `row`, or overwrite every column of the row with its key."""
        self._seen[table].append(row)
        self._rows[table][row[KEYS[table]]] = _Pending(True, dict(row))

    def update(self, table: str, key: Any, values: Row) -> None:
        """Set `values` on the row with `key`, if there is one."""
        self._seen[table].append({KEYS[table]: key, **values})
        pending = self._rows[table].get(key)
        if pending is None:
            self._rows[table][key] = _Pending(False, {KEYS[table]: key, **values})
        else:
            pending.values.update(values)

    def make_current(self, instance_id: str, task_code: str, attempt: int) -> None:
        """Only `attempt` of the task stays valid (task_instances.valid): earlier rows, and
        rows of other attempts upserted earlier in this batch, become invalid."""
        self._current[(instance_id, task_code)] = attempt

    def invalidate_attempts(self, instance_id: str) -> None:
        """Every attempt of the instance written so far (stored, or upserted earlier in this
        batch) becomes invalid; attempts made current afterwards stay valid (a rerun)."""
        self._invalidated.append(instance_id)
        for key in [k for k in self._current if k[0] == instance_id]:
            del self._current[key]
        for pending in self._rows["task_instances"].values():
            if pending.upsert and pending.values["instance_id"] == instance_id:
                pending.values["valid"] = False

    def flush(self) -> None:
        """Send every pending write; the changes are empty afterwards."""
        if self._archive:
            columns = tuple(self._archive[0])  # every row has the same (handlers.archive)
            query = _insert_sql("event_archive", columns, '(topic, partition, "offset") DO NOTHING')
            self.cur.execute(query, (_json(self._archive),))
        for table, seen in self._seen.items():
            if seen:  # converts every value: refuses what any single write would refuse
                self.cur.execute(
                    f"SELECT count(*) FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)",
                    (_json(seen),),
                )
        if self._invalidated:  # before the upserts: attempts made current later stay valid
            self.cur.execute(_INVALIDATE_SQL, (sorted(set(self._invalidated)),))
        if self._current:
            current = [{"instance_id": i, "task_code": t, "attempt": a}
                       for (i, t), a in self._current.items()]  # fmt: skip
            self.cur.execute(_SUPERSEDE_SQL, (_json(current),))
            for pending in self._rows["task_instances"].values():
                row = pending.values
                if pending.upsert and (row["instance_id"], row["task_code"]) in self._current:
                    row["valid"] = (
                        self._current[(row["instance_id"], row["task_code"])] == row["attempt"]
                    )
        for table, rows in self._rows.items():
            shapes: defaultdict[tuple[bool, tuple[str, ...]], list[Row]] = defaultdict(list)
            for pending in rows.values():
                shapes[(pending.upsert, tuple(sorted(pending.values)))].append(pending.values)
            for (upsert, columns), same in shapes.items():
                build = _upsert_sql if upsert else _update_sql
                self.cur.execute(build(table, columns), (_json(same),))
        self._reset()
