"""CommandRejected v3: the reason INVALID_PARAMS (a start whose parameters could run code).
A reader still on v2 resolves it to the enum's default, INTERNAL_ERROR; v2 records decode."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_reader

from schemas import serde
from schemas.registry import AVSC_DIR, registry
from streams.core.events import CommandRejected
from streams.core.rejections import Reason
from tests.schemas import spec
from tests.schemas.avro_io import write_body

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
V2 = json.loads((AVSC_DIR / "CommandRejected.v2.avsc").read_text())
V3 = json.loads((AVSC_DIR / "CommandRejected.v3.avsc").read_text())


def _datum(reason: str) -> dict[str, Any]:
    return {
        "instance_id": "i-1",
        "command_id": "start/i-1",
        "command_type": "StartWorkflow",
        "reason": reason,
        "message": "expected parameter names ..., found 'BASH_ENV'",
        "at": AT,
        "epoch": 0,
    }


def test_v3_is_v2_with_invalid_params_added_and_the_same_default() -> None:
    reason_v2, reason_v3 = V2["fields"][3]["type"], V3["fields"][3]["type"]
    assert sorted(reason_v3["symbols"]) == sorted([*reason_v2["symbols"], "INVALID_PARAMS"])
    assert reason_v3["default"] == "INTERNAL_ERROR"
    assert [f for i, f in enumerate(V3["fields"]) if i != 3] == [
        f for i, f in enumerate(V2["fields"]) if i != 3
    ]
    assert registry().latest[CommandRejected].path.name == "CommandRejected.v3.avsc"


def test_an_invalid_params_rejection_round_trips_with_the_v3_header() -> None:
    record = CommandRejected(
        instance_id="i-1", command_id="start/i-1", command_type="StartWorkflow",
        reason=Reason.INVALID_PARAMS, message="expected parameter names ..., found 'PATH'", at=AT,
    )  # fmt: skip
    data = serde.encode(record)
    assert data[:10] == spec.header(V3)
    assert serde.decode(data) == record


def test_a_v2_reader_reads_invalid_params_as_internal_error() -> None:
    body = write_body(V3, _datum("INVALID_PARAMS"))
    parsed = [parse_schema(s, _write_hint=False) for s in (V3, V2)]
    assert schemaless_reader(BytesIO(body), *parsed)["reason"] == "INTERNAL_ERROR"


def test_a_v2_rejection_already_in_the_log_decodes_under_v3() -> None:
    decoded = serde.decode(spec.header(V2) + write_body(V2, _datum("INTERNAL_ERROR")))
    assert decoded.reason is Reason.INTERNAL_ERROR
