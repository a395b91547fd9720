"""CommandRejected v2: the reason INTERNAL_ERROR (a decision that raised, recorded by the
master), with a default on the enum so a reader resolves a reason added after its version.
Records written with v1 keep decoding."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import serde
from schemas.registry import AVSC_DIR, registry
from streams.core.events import CommandRejected
from streams.core.rejections import Reason
from tests.schemas import spec
from tests.schemas.avro_io import read_body, write_body

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
V1 = json.loads((AVSC_DIR / "CommandRejected.v1.avsc").read_text())
V2 = json.loads((AVSC_DIR / "CommandRejected.v2.avsc").read_text())


def _datum(reason: str) -> dict[str, Any]:
    return {
        "instance_id": "i-1",
        "command_id": "c-1",
        "command_type": "StartWorkflow",
        "reason": reason,
        "message": "expected a decision, found ValueError: boom",
        "at": AT,
        "epoch": 2,
    }


def test_v2_is_v1_with_internal_error_added_and_the_default_on_the_enum() -> None:
    reason_v1, reason_v2 = V1["fields"][3]["type"], V2["fields"][3]["type"]
    assert reason_v2["symbols"] == [*reason_v1["symbols"], "INTERNAL_ERROR"]
    assert reason_v2["default"] == "INTERNAL_ERROR"


def test_an_internal_error_rejection_round_trips_with_the_latest_header() -> None:
    record = CommandRejected(
        instance_id="i-1", command_id="c-1", command_type="StartWorkflow",
        reason=Reason.INTERNAL_ERROR, message="expected a decision, found ValueError: boom",
        at=AT, epoch=2,
    )  # fmt: skip
    data = serde.encode(record)
    latest = json.loads(registry().latest[CommandRejected].path.read_text())
    assert data[:10] == spec.header(latest)
    assert serde.decode(data) == record


@pytest.mark.parametrize("header", ["spec", "legacy"])
def test_a_v1_rejection_already_in_the_log_decodes_under_v2(header: str) -> None:
    fingerprint = spec.fingerprint(V1)
    prefix = spec.header(V1) if header == "spec" else b"\xc3\x01" + fingerprint.to_bytes(8, "big")
    decoded = serde.decode(prefix + write_body(V1, _datum("STALE_ATTEMPT")))
    assert decoded.reason is Reason.STALE_ATTEMPT
    assert decoded.command_id == "c-1"


def test_a_reason_added_after_v2_reads_as_internal_error_under_v2() -> None:
    v3 = copy.deepcopy(V2)
    v3["fields"][3]["type"]["symbols"].append("QUOTA_EXCEEDED")  # a later version's reason
    body = write_body(v3, _datum("QUOTA_EXCEEDED"))
    assert read_body(body, v3, V2)["reason"] == "INTERNAL_ERROR"


def test_a_v1_reader_reads_v2_records_of_the_reasons_it_knows() -> None:
    body = write_body(V2, _datum("NOT_FOUND"))
    assert read_body(body, V2, V1) == _datum("NOT_FOUND")
