"""Every `.avsc` version parses and round-trips a sample of its class through tideflow's serde;
the record classes have not drifted from their latest schema files."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pytest
from fastavro import parse_schema, schemaless_writer

from schemas import catalog, generate, serde
from schemas.errors import DecodeError, SchemaDrift
from schemas.mapping import to_avro_converter
from schemas.registry import _FILE, AVSC_DIR, Registry, registry, schema_fingerprint
from tests.schemas import spec
from tests.schemas.samples import fit, sample

AVSC = sorted(AVSC_DIR.glob("*.avsc"))
CLASSES = {cls.__name__: cls for cls in catalog.ALL}


def test_every_record_class_has_a_schema_file_and_every_file_a_class() -> None:
    names = set()
    for path in AVSC:
        m = _FILE.match(path.name)
        assert m, f"{path.name}: not <Name>.v<N>.avsc"
        names.add(m["name"])
    assert names == set(CLASSES)


def test_versions_of_a_class_are_numbered_from_one_without_gaps() -> None:
    versions: dict[str, list[int]] = {}
    for path in AVSC:
        m = _FILE.match(path.name)
        assert m
        versions.setdefault(m["name"], []).append(int(m["version"]))
    for name, numbers in versions.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), name


@pytest.mark.parametrize("path", AVSC, ids=lambda p: p.name)
def test_every_version_parses_and_round_trips_a_sample(path: Path) -> None:
    m = _FILE.match(path.name)
    assert m
    cls = CLASSES[m["name"]]
    raw = json.loads(path.read_text())
    assert raw["name"] == f"{catalog.NAMESPACE}.{cls.__name__}"
    spec.canonical_form(raw)  # a schema by the specification's rules, too
    parsed = parse_schema(raw, _write_hint=False)

    record = fit(sample(cls), raw)  # what a writer of that day could write
    buf = BytesIO()
    schemaless_writer(buf, parsed, to_avro_converter(cls)(record))
    data = spec.header(raw) + buf.getvalue()

    assert serde.decode(data) == record


@pytest.mark.parametrize("cls", catalog.ALL, ids=lambda c: c.__name__)
def test_every_class_round_trips_with_its_latest_schema(cls: type) -> None:
    for salt in (1, 2, 3):  # every enum member in turn, for the small enums
        record = sample(cls, salt)
        data = serde.encode(record)
        latest = registry().latest[cls]
        assert data[2:10] == schema_fingerprint(json.loads(latest.path.read_text()))
        assert serde.decode(data) == record


def test_an_encoded_record_is_only_accepted_on_its_own_topic() -> None:
    data = serde.encode(sample(catalog.DISPATCH[0]))
    assert serde.expect(data, catalog.DISPATCH) == sample(catalog.DISPATCH[0])
    with pytest.raises(DecodeError, match="unexpected record type"):
        serde.expect(data, catalog.COMMANDS)


def test_no_record_class_drifted_from_its_latest_schema() -> None:
    generate.check()  # fails `./dev test` until `python -m schemas.generate` writes the version


@pytest.fixture
def stale_registry() -> Registry:
    """The registry as it was before StartWorkflow v2 (`schedule_time`) was generated."""
    reg = registry()
    start = CLASSES["StartWorkflow"]
    v1 = next(sv for sv in reg.by_fingerprint.values() if sv.cls is start and sv.version == 1)
    return Registry(reg.by_fingerprint, {**reg.latest, start: v1})


def test_drift_is_reported_when_a_class_outgrew_its_latest_file(stale_registry: Registry) -> None:
    start = CLASSES["StartWorkflow"]
    assert set(generate.pending(stale_registry)) == {start}
    assert generate.pending(stale_registry)[start] == json.loads(
        registry().latest[start].path.read_text()
    )
    with pytest.raises(SchemaDrift, match="StartWorkflow"):
        generate.check(stale_registry)


def test_the_generator_check_exits_nonzero_on_drift(
    stale_registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generate.main(["--check"])  # no drift: returns, writes nothing
    monkeypatch.setattr(generate, "registry", lambda: stale_registry)
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--check"])
    assert exit_info.value.code == 1
    assert "StartWorkflow" in capsys.readouterr().err
