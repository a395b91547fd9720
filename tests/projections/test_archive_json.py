"""The archive's JSON form of a record (`jsonable`): what a walk by value gives (enum names,
ISO times, lists for tuples, text without NUL) for every record class, and, for a definition,
the read model's stored form (`workflow_to_dict`)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.handlers import jsonable
from schemas.catalog import ALL
from streams.core.definition import WorkflowDef, workflow_to_dict
from tests.core.test_definition_json import definitions


def by_value(value: Any) -> Any:
    """The archive's JSON form, spelled out: the oracle `jsonable` must equal."""
    if isinstance(value, str) and not isinstance(value, Enum):
        return _text(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: by_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [by_value(v) for v in value]
    if isinstance(value, dict):
        return {_text(str(k)): by_value(v) for k, v in value.items()}
    return value


def _text(value: str) -> str:
    return value.replace("\x00", "\ufffd")


def texts(plain: Any) -> list[str]:
    """Every string in a plain JSON value, map keys included."""
    if isinstance(plain, dict):
        return [*plain, *(t for item in plain.values() for t in texts(item))]
    if isinstance(plain, list):
        return [t for item in plain for t in texts(item)]
    return [plain] if isinstance(plain, str) else []


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_the_archived_form_of_every_record_class_is_its_walk_by_value(
    cls: type, data: st.DataObject
) -> None:
    record = data.draw(st.from_type(cls))

    archived = jsonable(record)

    assert archived == by_value(record)
    json.dumps(archived)
    assert not any("\x00" in text for text in texts(archived))  # jsonb refuses NUL


@settings(max_examples=100, deadline=None)
@given(definitions())
def test_a_definition_is_archived_in_its_stored_form(wf: WorkflowDef) -> None:
    clean = jsonable(workflow_to_dict(wf))  # what the read model's column holds

    assert jsonable(wf) == clean
    if not any("\x00" in text for text in texts(workflow_to_dict(wf))):
        assert clean == workflow_to_dict(wf)
