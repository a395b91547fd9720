"""Every version stays readable forever: StartWorkflow v2 (`schedule_time`, optional) next to
the v1 that writers before it used, and a pin on every released version's fingerprint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader

from schemas import serde
from schemas.registry import AVSC_DIR, registry, schema_fingerprint
from streams.core.commands import StartWorkflow
from streams.core.definition import TaskDef, WorkflowDef
from streams.core.enums import FailureStrategy, Priority, TaskType
from tests.schemas import spec
from tests.schemas.avro_io import write_body

AT = datetime(2024, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)
FIRE = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
V1 = json.loads((AVSC_DIR / "StartWorkflow.v1.avsc").read_text())
V2 = json.loads((AVSC_DIR / "StartWorkflow.v2.avsc").read_text())
# v3 adds the tasks' run flag, v4 the dry run, v5 the start nodes and scope, v6 the timeout
# strategy, delay and workflow timeout: what tideflow
# writes now
LATEST = json.loads(registry().latest[StartWorkflow].path.read_text())

# The CRC-64-AVRO fingerprint of every version released so far. A released version is never
# edited: records written with it are in the logs. A new version is added here when it is
# generated (a test fails until it is).
RELEASED = {
    "BackfillCommandRejected.v1.avsc": 0x862DBAEA42FC4DFF,
    "BackfillDateEnded.v1.avsc": 0x3243AAD8C70E2011,
    "BackfillDateStarted.v1.avsc": 0x2DAC12CB49ED20D8,
    "BackfillFinished.v1.avsc": 0x0097DB1E7AE2CC2E,
    "BackfillRequested.v1.avsc": 0x69D4F966314C1FD9,
    "BackfillStopped.v1.avsc": 0xF9D1C34C92C4284F,
    "RequestBackfill.v1.avsc": 0xBCA6AAC87EA4260E,
    "StopBackfill.v1.avsc": 0x75B659F01A26DEB6,
    "CommandRejected.v1.avsc": 0x473F2AD21A1E49B4,
    "CommandRejected.v2.avsc": 0x1F5A6F86D540212C,
    "CommandRejected.v3.avsc": 0x3F1E353FE30BA1B2,
    "ForceTaskSuccess.v1.avsc": 0xA3F2BCF3515AFF64,
    "KillTask.v1.avsc": 0x7AA2A5CAD0987078,
    "PartitionTakenOver.v1.avsc": 0x790B120B155C1B84,
    "PauseWorkflow.v1.avsc": 0xDEFB9997894D083D,
    "ReportTaskFinished.v1.avsc": 0x0D8820A892C5B77B,
    "ReportTaskFinished.v2.avsc": 0x9378E92865D19CA0,
    "ReportTaskStarted.v1.avsc": 0x6DC39647A12D2C80,
    "RerunTasks.v1.avsc": 0xF116A3B83E9965EF,
    "RerunWorkflow.v1.avsc": 0xF1F031A0F38A4568,
    "ResumeWorkflow.v1.avsc": 0xE620F210B1B51CA3,
    "StartWorkflow.v1.avsc": 0x1BF1440FCDF87EBA,
    "StartWorkflow.v2.avsc": 0x09BF7695FF4D4CE5,
    "StartWorkflow.v3.avsc": 0x12FB642FFF0CC99E,
    "StartWorkflow.v4.avsc": 0x1599C17EAC2FCAFD,
    "StartWorkflow.v5.avsc": 0x1A36D6D5C9E32887,
    "StartWorkflow.v6.avsc": 0x1C736E542A85E1C9,
    "StopTask.v1.avsc": 0x31B7F45FADF5B88C,
    "StopWorkflow.v1.avsc": 0x810F04169037027B,
    "TaskAssignment.v1.avsc": 0xCD1B7AAFAFBB03EB,
    "TaskAssignment.v2.avsc": 0xCF5DF5214FCA4D85,
    "TaskDelayed.v1.avsc": 0xD3D3076EF3543C24,
    "TaskAssignment.v3.avsc": 0xCAB14492DED5E117,
    "TaskDispatched.v1.avsc": 0x3E5A38D0A1480D52,
    "TaskDispatched.v2.avsc": 0x6BE02A0E68A9E331,
    "TaskFailed.v1.avsc": 0xF1732B86C2E1E868,
    "TaskFailedOver.v1.avsc": 0xA3CF646D8376629E,
    "TaskKillRequested.v1.avsc": 0x45DE01C365F05282,
    "TaskKilled.v1.avsc": 0x5EFF8E7E0B194550,
    "TaskStarted.v1.avsc": 0x3BEEC30E5C95BD89,
    "TaskSucceeded.v1.avsc": 0xF228100292071F59,
    "TaskSucceeded.v2.avsc": 0x51A4E2A8C07087EC,
    "TaskSuccessForced.v1.avsc": 0xFAFFBA2DCAAF1DC8,
    "TaskTimedOut.v1.avsc": 0x1F79DE0EAEDA69A6,
    "TasksRerun.v1.avsc": 0x1A5388CAF36ABB5C,
    "WorkerHeartbeat.v1.avsc": 0xFD05D54C6B5CB4FC,
    "WorkerHeartbeat.v2.avsc": 0x6EBD5E6C7CA73035,
    "WorkerLost.v1.avsc": 0xA7F247099F731078,
    "WorkflowDefinitionRegistered.v1.avsc": 0xA05E6462DE7D4EE9,
    "WorkflowDefinitionRegistered.v2.avsc": 0x8AA9EB5F9A71FE9A,
    "WorkflowDefinitionRegistered.v3.avsc": 0x763057545F41B3D1,
    "WorkflowFailed.v1.avsc": 0xAAEE0F381A1C1BB1,
    "WorkflowPauseRequested.v1.avsc": 0xAA1EBBE48890D5E7,
    "WorkflowPaused.v1.avsc": 0xE820B70CDC55A2EA,
    "WorkflowRerun.v1.avsc": 0x946D295252E81AC1,
    "WorkflowResumed.v1.avsc": 0x3B122819F07C8DD2,
    "WorkflowStarted.v1.avsc": 0xBE5BCCD57AEB0594,
    "WorkflowStarted.v2.avsc": 0x88EBE315954BADAE,
    "WorkflowStarted.v3.avsc": 0x8526112B8A2B9813,
    "WorkflowStarted.v4.avsc": 0x9F4CDF0C2310D2CE,
    # schedules (issue 10)
    "CreateSchedule.v1.avsc": 0x0B6A8E1082246CE6,
    "UpdateSchedule.v1.avsc": 0x600F80A99EDE9DF8,
    "BringScheduleOnline.v1.avsc": 0x0A418122CA0CEC7B,
    "TakeScheduleOffline.v1.avsc": 0x1DC555019139987A,
    "DeleteSchedule.v1.avsc": 0x15F9383FF1B6006D,
    "ScheduleCreated.v1.avsc": 0x60A54C3611029175,
    "ScheduleUpdated.v1.avsc": 0x2E21F3428F703079,
    "ScheduleBroughtOnline.v1.avsc": 0xD113B73C8E25DE92,
    "ScheduleTakenOffline.v1.avsc": 0x30F06982187903EF,
    "ScheduleDeleted.v1.avsc": 0xFCED79C21DD6882E,
    "ScheduleFired.v1.avsc": 0x5C1A3A8A935F9B85,
    "ScheduleCommandRejected.v1.avsc": 0xB541ECB202A66BF9,
    "WorkflowStarted.v5.avsc": 0xADE30C5DD94EB906,  # schedule_time (10), priority (11)
    "WorkflowStopRequested.v1.avsc": 0xA6759762018D6D05,
    "WorkflowStopped.v1.avsc": 0x9B76AF7C0B1B12A4,
    "WorkflowSucceeded.v1.avsc": 0xD141437361CD8657,
    "WorkflowTimedOut.v1.avsc": 0x5F7051540CC1C185,
}


def test_every_schema_file_is_pinned() -> None:
    assert sorted(p.name for p in AVSC_DIR.glob("*.avsc")) == sorted(RELEASED)


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_a_released_version_is_never_edited(name: str) -> None:
    schema = json.loads((AVSC_DIR / name).read_text())
    assert spec.fingerprint(schema) == RELEASED[name]


def test_v2_is_v1_plus_an_optional_schedule_time_with_a_null_default() -> None:
    assert V2["fields"][: len(V1["fields"])] == V1["fields"]
    assert V2["fields"][len(V1["fields"]) :] == [
        {
            "name": "schedule_time",
            "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}],
            "default": None,
        }
    ]
    assert registry().latest[StartWorkflow].path.name == "StartWorkflow.v6.avsc"


def test_a_v1_record_from_an_old_writer_decodes_under_v2_with_no_schedule_time() -> None:
    data = spec.header(V1) + write_body(V1, _v1_datum())
    assert serde.decode(data) == _start(schedule_time=None)


def test_a_v1_record_with_the_legacy_header_order_decodes_too() -> None:
    data = b"\xc3\x01" + spec.fingerprint(V1).to_bytes(8, "big") + write_body(V1, _v1_datum())
    assert serde.decode(data) == _start(schedule_time=None)


@pytest.mark.parametrize("schedule_time", [None, FIRE], ids=["manual", "cron-fired"])
def test_tideflow_writes_the_latest_version_and_reads_it_back(
    schedule_time: datetime | None,
) -> None:
    record = _start(schedule_time=schedule_time)
    data = serde.encode(record)
    assert data[:10] == spec.header(LATEST)
    assert serde.decode(data) == record


def test_a_v2_reader_accepts_v1_and_v2_writers() -> None:
    v1, v2 = parse_schema(V1, _write_hint=False), parse_schema(V2, _write_hint=False)
    old = schemaless_reader(BytesIO(write_body(V1, _v1_datum())), v1, v2)
    new = schemaless_reader(BytesIO(write_body(V2, {**_v1_datum(), "schedule_time": FIRE})), v2, v2)
    assert old == {**_v1_datum(), "schedule_time": None}
    assert new == {**_v1_datum(), "schedule_time": FIRE}


def test_a_v1_reader_still_reads_what_v2_writes() -> None:
    """Forward compatibility: a process not yet upgraded drops the field it does not know."""
    v1, v2 = parse_schema(V1, _write_hint=False), parse_schema(V2, _write_hint=False)
    body = write_body(V2, {**_v1_datum(), "schedule_time": FIRE})
    assert schemaless_reader(BytesIO(body), v2, v1) == _v1_datum()


def test_the_fingerprints_differ_by_version() -> None:
    assert schema_fingerprint(V1) != schema_fingerprint(V2)
    assert registry().by_fingerprint[schema_fingerprint(V1)].version == 1
    assert registry().by_fingerprint[schema_fingerprint(V2)].version == 2


def _v1_datum() -> dict[str, Any]:
    """A StartWorkflow as a v1 writer hands it to its Avro library (no tideflow code)."""
    return {
        "command_id": "cmd-1",
        "instance_id": "nightly-1",
        "workflow": {
            "code": "nightly",
            "version": 3,
            "description": "extract then load",
            "failure_strategy": "END",
            "tasks": [
                {
                    "code": "extract",
                    "type": "SHELL",
                    "command": "./extract.sh",
                    "depends": [],
                    "retries": 2,
                    "retry_interval_s": 30.0,
                    "timeout_s": 600.0,
                    "worker_group": "etl",
                    "priority": "HIGH",
                    "description": "",
                },
                {
                    "code": "load",
                    "type": "NOOP",
                    "command": "",
                    "depends": ["extract"],
                    "retries": 0,
                    "retry_interval_s": 0.0,
                    "timeout_s": None,
                    "worker_group": "default",
                    "priority": "MEDIUM",
                    "description": "last",
                },
            ],
        },
        "params": {"day": "2024-06-01"},
        "requested_by": "alice",
        "at": AT,
    }


def _start(schedule_time: datetime | None) -> StartWorkflow:
    return StartWorkflow(
        command_id="cmd-1",
        instance_id="nightly-1",
        workflow=WorkflowDef(
            code="nightly",
            version=3,
            description="extract then load",
            failure_strategy=FailureStrategy.END,
            tasks=(
                TaskDef(
                    code="extract",
                    type=TaskType.SHELL,
                    command="./extract.sh",
                    retries=2,
                    retry_interval_s=30.0,
                    timeout_s=600.0,
                    worker_group="etl",
                    priority=Priority.HIGH,
                ),
                TaskDef(
                    code="load",
                    type=TaskType.NOOP,
                    depends=("extract",),
                    description="last",
                ),
            ),
        ),
        params={"day": "2024-06-01"},
        requested_by="alice",
        at=AT,
        schedule_time=schedule_time,
    )
