"""Interoperability with a second, independent Avro implementation (the Apache `avro` package).

Headers are built and parsed here from the specification (`tests.schemas.spec`): marker C3 01,
then the CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, little-endian.
The `avro` package's own `canonical_form` keeps a logical-type primitive such as
`{"type":"long","logicalType":"timestamp-micros"}` as an object (1.12 writes `{"type":"long"}`)
where the specification says `"long"`, so fingerprints come from the specification's form,
never from that package.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import pytest

from schemas import catalog, serde
from schemas.registry import AVSC_DIR, registry
from streams.core.commands import StartWorkflow
from streams.core.definition import TaskDef, WorkflowDef
from streams.core.enums import FailureStrategy, Priority, TaskType
from streams.core.events import TaskFailed
from streams.core.worker_messages import TaskAssignment
from tests.schemas import spec
from tests.schemas.samples import sample

AT = datetime(2024, 6, 1, 12, 0, 0, 250001, tzinfo=UTC)
RETRY = datetime(2024, 6, 1, 12, 0, 30, tzinfo=UTC)
FIRE = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _load(path: Path) -> tuple[dict[str, Any], avro.schema.Schema]:
    text = path.read_text()
    return json.loads(text), avro.schema.parse(text)


# Every schema version a reader might meet, by the fingerprint the specification gives it.
BY_FINGERPRINT = {
    spec.fingerprint(raw): (raw, parsed) for raw, parsed in map(_load, AVSC_DIR.glob("*.avsc"))
}


def avro_encode(avsc: str, datum: dict[str, Any]) -> bytes:
    """What an outside producer writes: the spec's header, then the `avro` package's body."""
    raw, parsed = _load(AVSC_DIR / avsc)
    buf = BytesIO()
    avro.io.DatumWriter(parsed).write(datum, avro.io.BinaryEncoder(buf))
    return spec.header(raw) + buf.getvalue()


def avro_decode(data: bytes) -> tuple[str, dict[str, Any]]:
    """What an outside consumer reads: (writer schema name, datum), with no tideflow code."""
    fp, body = spec.split(data)
    raw, parsed = BY_FINGERPRINT[fp]
    datum = avro.io.DatumReader(parsed).read(avro.io.BinaryDecoder(BytesIO(body)))
    assert isinstance(datum, dict)
    return raw["name"], datum


# -- the records, as an outside program writes them and as tideflow sees them -----------------

START_DATUM: dict[str, Any] = {
    "command_id": "cmd-ext-1",
    "instance_id": "nightly-ext-1",
    "workflow": {
        "code": "nightly",
        "version": 4,
        "description": "from outside",
        "failure_strategy": "END",
        "tasks": [
            {
                "code": "extract",
                "type": "SHELL",
                "command": "./extract.sh",
                "depends": [],
                "retries": 1,
                "retry_interval_s": 5.0,
                "timeout_s": 60.0,
                "worker_group": "etl",
                "priority": "HIGHEST",
                "description": "",
                "run": True,
                "timeout_strategy": "FAILED",
                "delay_s": 0.0,
                "params": [],
                "spec": None,
            },
            {
                "code": "done",
                "type": "NOOP",
                "command": "",
                "depends": ["extract"],
                "retries": 0,
                "retry_interval_s": 0.0,
                "timeout_s": None,
                "worker_group": "default",
                "priority": "LOWEST",
                "description": "fan-in",
                "run": True,
                "timeout_strategy": "FAILED",
                "delay_s": 0.0,
                "params": [],
                "spec": None,
            },
        ],
        "timeout_s": None,
        "params": [],
    },
    "params": {"day": "2024-06-01", "région": "ü"},
    "requested_by": "cron",
    "at": AT,
    "schedule_time": FIRE,
    "dry_run": False,
    "start_nodes": [],
    "scope": "TASK_POST",
    "priority": "MEDIUM",
}

START = StartWorkflow(
    command_id="cmd-ext-1",
    instance_id="nightly-ext-1",
    workflow=WorkflowDef(
        code="nightly",
        version=4,
        description="from outside",
        failure_strategy=FailureStrategy.END,
        tasks=(
            TaskDef(
                code="extract",
                command="./extract.sh",
                retries=1,
                retry_interval_s=5.0,
                timeout_s=60.0,
                worker_group="etl",
                priority=Priority.HIGHEST,
            ),
            TaskDef(
                code="done",
                type=TaskType.NOOP,
                depends=("extract",),
                priority=Priority.LOWEST,
                description="fan-in",
            ),
        ),
    ),
    params={"day": "2024-06-01", "région": "ü"},
    requested_by="cron",
    at=AT,
    schedule_time=FIRE,
)

FAILED_DATUM: dict[str, Any] = {
    "instance_id": "nightly-ext-1",
    "task_code": "extract",
    "attempt": 1,
    "exit_code": 3,
    "reason": "exit code 3",
    "output": "no such file\n",
    "retry_at": RETRY,
    "cause": "ack-1",
    "at": AT,
    "epoch": 2,
}

FAILED = TaskFailed(
    instance_id="nightly-ext-1",
    task_code="extract",
    attempt=1,
    exit_code=3,
    reason="exit code 3",
    output="no such file\n",
    retry_at=RETRY,
    cause="ack-1",
    at=AT,
    epoch=2,
)

ASSIGNMENT_DATUM: dict[str, Any] = {
    "instance_id": "nightly-ext-1",
    "task_code": "extract",
    "attempt": 2,
    "worker_id": "worker-a",
    "type": "SHELL",
    "command": "./extract.sh",
    "timeout_s": None,
    "env": {"TIDEFLOW_DAY": "2024-06-01"},
    "epoch": 2,
    "at": AT,
    "dry_run": False,
    "spec": None,
}

ASSIGNMENT = TaskAssignment(
    instance_id="nightly-ext-1",
    task_code="extract",
    attempt=2,
    worker_id="worker-a",
    type=TaskType.SHELL,
    command="./extract.sh",
    env={"TIDEFLOW_DAY": "2024-06-01"},
    epoch=2,
    at=AT,
)

CASES = [
    ("StartWorkflow.v6.avsc", START_DATUM, START, catalog.COMMANDS),
    ("TaskFailed.v1.avsc", FAILED_DATUM, FAILED, catalog.EVENTS),
    ("TaskAssignment.v3.avsc", ASSIGNMENT_DATUM, ASSIGNMENT, catalog.DISPATCH),
]
IDS = ["command", "event", "dispatch"]


def test_the_specifications_helpers_match_its_vector() -> None:
    assert spec.fingerprint("null") == 7195948357588979594
    assert spec.header("null")[2:] == bytes.fromhex("8A 8F 25 CC E7 24 DD 63")


@pytest.mark.parametrize(("avsc", "datum", "record", "topic"), CASES, ids=IDS)
def test_tideflow_decodes_what_the_avro_package_writes(
    avsc: str, datum: dict[str, Any], record: Any, topic: tuple[type, ...]
) -> None:
    assert serde.expect(avro_encode(avsc, datum), topic) == record


@pytest.mark.parametrize(("avsc", "datum", "record", "topic"), CASES, ids=IDS)
def test_the_avro_package_decodes_what_tideflow_writes(
    avsc: str, datum: dict[str, Any], record: Any, topic: tuple[type, ...]
) -> None:
    name, decoded = avro_decode(serde.encode(record))
    assert name == f"tideflow.{type(record).__name__}"
    assert decoded == datum


def test_tideflow_decodes_a_start_written_by_an_outside_producer_still_on_v1() -> None:
    later = ("schedule_time", "dry_run", "start_nodes", "scope", "priority")  # v2, v4-v6
    datum = {k: v for k, v in START_DATUM.items() if k not in later}
    workflow = datum["workflow"]
    newer = ("run", "timeout_strategy", "delay_s", "params", "spec")  # v3, v6
    tasks = [{k: v for k, v in t.items() if k not in newer} for t in workflow["tasks"]]
    # nor the run flag (v3), the timeouts, delay, parameters and type settings (v6)
    datum["workflow"] = {
        **{k: v for k, v in workflow.items() if k not in ("timeout_s", "params")},
        "tasks": tasks,
    }
    decoded = serde.decode(avro_encode("StartWorkflow.v1.avsc", datum))
    assert decoded == StartWorkflow(**{**_fields(START), "schedule_time": None})


def test_the_bytes_are_the_same_from_either_implementation() -> None:
    for avsc, datum, record, _ in CASES:
        assert serde.encode(record) == avro_encode(avsc, datum), avsc


@pytest.mark.parametrize("cls", catalog.ALL, ids=lambda c: c.__name__)
def test_every_record_class_crosses_both_ways(cls: type) -> None:
    """tideflow -> avro -> identical bytes from avro -> tideflow, for a sample of each class."""
    record = sample(cls)
    data = serde.encode(record)
    name, datum = avro_decode(data)
    assert name == f"tideflow.{cls.__name__}"
    latest = registry().latest[cls].path.name
    assert avro_encode(latest, datum) == data
    assert serde.decode(avro_encode(latest, datum)) == record


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}
