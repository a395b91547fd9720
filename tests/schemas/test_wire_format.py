"""The single-object header follows the Avro specification (fingerprint little-endian), and
records written before that fix (fingerprint reversed) still decode."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastavro.schema import to_parsing_canonical_form

from schemas import serde
from schemas.catalog import ALL
from schemas.errors import DecodeError
from schemas.registry import (
    AVSC_DIR,
    FingerprintClash,
    SchemaVersion,
    index_fingerprints,
    legacy_fingerprint,
    registry,
    schema_fingerprint,
)
from streams.core.events import TaskSucceeded
from tests.schemas import spec

NULL_FINGERPRINT = 7195948357588979594  # the specification's vector
NULL_HEADER_BYTES = bytes.fromhex("8A 8F 25 CC E7 24 DD 63")
AT = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
AVSC = sorted(AVSC_DIR.glob("*.avsc"))


def test_the_specification_vector_for_null() -> None:
    assert NULL_FINGERPRINT == 0x63DD24E7CC258F8A
    assert spec.crc64_avro(b'"null"') == NULL_FINGERPRINT
    assert spec.header("null") == b"\xc3\x01" + NULL_HEADER_BYTES
    assert schema_fingerprint("null") == NULL_HEADER_BYTES
    assert legacy_fingerprint("null") == NULL_HEADER_BYTES[::-1]


def test_the_crc_of_nothing_is_the_empty_value() -> None:
    assert spec.crc64_avro(b"") == spec.EMPTY


@pytest.mark.parametrize("path", AVSC, ids=lambda p: p.name)
def test_every_schema_fingerprint_is_the_specifications(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert spec.canonical_form(schema) == to_parsing_canonical_form(schema)
    assert schema_fingerprint(schema) == spec.fingerprint(schema).to_bytes(8, "little")


def test_a_record_header_is_marker_then_little_endian_fingerprint() -> None:
    record = _succeeded()
    data = serde.encode(record)
    writer = json.loads(registry().latest[TaskSucceeded].path.read_text())
    assert data[:10] == spec.header(writer)
    assert spec.split(data)[0] == spec.fingerprint(writer)


def test_a_record_written_with_the_legacy_reversed_header_still_decodes() -> None:
    record = _succeeded()
    data = serde.encode(record)
    legacy = data[:2] + data[2:10][::-1] + data[10:]
    assert legacy != data
    assert serde.decode(legacy) == record


def test_every_version_is_indexed_under_both_orders_with_no_clash() -> None:
    reg = registry()  # building it runs the clash check over every .avsc
    versions = {sv.path for sv in reg.by_fingerprint.values()}
    assert len(versions) == len(AVSC)
    for sv in reg.by_fingerprint.values():
        assert reg.by_fingerprint[sv.fingerprint] is reg.by_fingerprint[sv.fingerprint[::-1]]
    fingerprints = {sv.fingerprint for sv in reg.by_fingerprint.values()}
    assert len(reg.by_fingerprint) == 2 * len(fingerprints)  # no palindromes among ours


def test_a_legacy_key_equal_to_another_schemas_key_is_refused() -> None:
    a = _version(TaskSucceeded, 1, bytes(range(8)))
    b = _version(ALL[0], 1, bytes(range(8))[::-1])
    with pytest.raises(FingerprintClash):
        index_fingerprints([a, b])


def test_a_palindromic_fingerprint_maps_to_its_own_schema() -> None:
    a = _version(TaskSucceeded, 1, b"\x01\x02\x03\x04\x04\x03\x02\x01")
    assert index_fingerprints([a]) == {a.fingerprint: a}


def test_versions_with_one_canonical_form_share_a_key_naming_the_later() -> None:
    fp = bytes(range(8))
    v1, v2 = _version(TaskSucceeded, 1, fp), _version(TaskSucceeded, 2, fp)
    assert index_fingerprints([v2, v1])[fp] is v2


def test_an_unknown_fingerprint_raises_decode_error() -> None:
    data = serde.encode(_succeeded())
    unknown = data[:2] + b"\x00\x11\x22\x33\x44\x55\x66\x77" + data[10:]
    with pytest.raises(DecodeError, match="unknown writer schema fingerprint 0x7766554433221100"):
        serde.decode(unknown)


@pytest.mark.parametrize(
    "data", [None, b"", b"\xc3\x01\x00", b"\xc3\x02" + bytes(8), b"{}" + bytes(12)]
)
def test_bytes_that_are_not_single_object_encoding_raise_decode_error(
    data: bytes | None,
) -> None:
    with pytest.raises(DecodeError):
        serde.decode(data)


def test_a_truncated_body_raises_decode_error() -> None:
    data = serde.encode(_succeeded())
    with pytest.raises(DecodeError, match="cannot decode TaskSucceeded"):
        serde.decode(data[:-3])


def _succeeded() -> TaskSucceeded:
    return TaskSucceeded(
        instance_id="inst-1",
        task_code="extract",
        attempt=2,
        exit_code=0,
        output="done\n",
        cause="cmd-7",
        at=AT,
        epoch=3,
    )


def _version(cls: type, version: int, fp: bytes) -> SchemaVersion:
    sv = registry().latest[TaskSucceeded]
    return replace(sv, cls=cls, version=version, fingerprint=fp, path=Path(f"x.v{version}.avsc"))
