"""`streams/core` is pure: no I/O, clocks, randomness or process state (checked statically,
as Temporal's sandbox does at run time)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import streams.core

CORE = Path(streams.core.__file__).parent
SOURCES = sorted(CORE.rglob("*.py"))

FORBIDDEN_MODULES = {
    "confluent_kafka",
    "psycopg",
    "time",
    "random",
    "os",
    "socket",
    "threading",
    "subprocess",
    "asyncio",
}
# (receiver, attribute) calls; a receiver of None matches a bare call of the name.
FORBIDDEN_CALLS = {
    (None, "uuid4"),
    ("uuid", "uuid4"),
    ("uuid", "uuid1"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    (None, "open"),
    (None, "print"),
    (None, "hash"),  # salted per process: breaks replay
}


def violations(source: str, filename: str = "<src>") -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [
                f"{where}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in FORBIDDEN_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{where}: from {node.module} import ...")
            found += [
                f"{where}: from {node.module} import {a.name}"
                for a in node.names
                if (None, a.name) in FORBIDDEN_CALLS
            ]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and (None, func.id) in FORBIDDEN_CALLS:
                found.append(f"{where}: call {func.id}()")
            elif isinstance(func, ast.Attribute):
                receiver = func.value
                name = (
                    receiver.id
                    if isinstance(receiver, ast.Name)
                    else receiver.attr
                    if isinstance(receiver, ast.Attribute)
                    else None
                )
                if (name, func.attr) in FORBIDDEN_CALLS or func.attr == "uuid4":
                    found.append(f"{where}: call {name}.{func.attr}()")
    return found


def test_core_sources_are_found() -> None:
    names = {p.relative_to(CORE).as_posix() for p in SOURCES}

    assert {"evolve.py", "tick.py", "decide/report.py", "placement.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(CORE).as_posix())
def test_core_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(), path.relative_to(CORE).as_posix()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "import os.path",
        "import time as t",
        "from random import choice",
        "from confluent_kafka import Producer",
        "import psycopg",
        "from socket import socket",
        "import threading",
        "from uuid import uuid4",
        "x = uuid.uuid4()",
        "x = uuid4()",
        "x = datetime.now()",
        "x = datetime.datetime.utcnow()",
        "x = dt.datetime.now(tz=UTC)",
        "x = time.time()",
        "x = hash(key)",
    ],
)
def test_purity_check_catches(source: str) -> None:
    assert violations(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import datetime, timedelta",
        "import hashlib",
        "from uuid import uuid5, NAMESPACE_URL",
        "x = uuid5(NS, name)",
        "x = now + timedelta(seconds=1)",
        "from streams.core.timeouts import x",
        "from . import os",
    ],
)
def test_purity_check_allows(source: str) -> None:
    assert violations(source) == []
