"""Reading workflow definitions from files and from the stored (JSON) form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from streams.core.definition import (
    InvalidDefinition,
    WorkflowDef,
    parse_workflow,
    workflow_from_dict,
)


def parse_text(text: str, source: str = "<input>") -> WorkflowDef:
    """A definition from YAML or JSON text (JSON is YAML); raises `InvalidDefinition`."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidDefinition([f"{source}: not valid YAML or JSON: {exc}"]) from exc
    return parse_workflow(raw)


def load_file(path: str | Path) -> WorkflowDef:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InvalidDefinition([f"{p}: cannot read: {exc.strerror}"]) from exc
    return parse_text(text, str(p))


def from_stored(stored: Mapping[str, Any] | str, version: int) -> WorkflowDef:
    """The definition as the read model keeps it (`workflow_to_dict`, JSON text or already
    parsed), with the version of its row."""
    data = json.loads(stored) if isinstance(stored, str) else stored
    return replace(workflow_from_dict(data), version=version)
