"""Declared parameters: a workflow's global ones and a task's local IN / OUT ones (pure).

DolphinScheduler's `prop` / `direct` / `type` / `value`. A global parameter is an IN value
for every task; a local IN parameter is one task's; a local OUT parameter names a value the
task exports to its downstream tasks (`${setValue(name=value)}` on a SHELL or PYTHON task's
stdout, a SQL query's column, an HTTP task's `<task>.response`): a task exports only what it
declares OUT. Values may hold `${other}` references and `$[...]` time expressions
(`streams.core.resolve`).

Names: letters, digits, `_` and `.` (DolphinScheduler's built-ins are dotted:
`system.biz.date`), not starting with a digit or `system.` (the built-ins' own), and none the
rule for environment names refuses (`streams.core.params`: not PATH, BASH_ENV, LD_*, ...):
a parameter without a dot also reaches a SHELL or PYTHON task as an environment variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeVar

from streams.core.params import VALUE_LIMIT, name_problem

_DOTTED: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
NAME_LIMIT: Final = 128
BUILTIN_PREFIX: Final = "system."
_E = TypeVar("_E", bound=StrEnum)


class Direct(StrEnum):
    IN = "IN"
    OUT = "OUT"


class ParamType(StrEnum):
    """DolphinScheduler's parameter types; every value travels as text, LIST as JSON."""

    VARCHAR = "VARCHAR"
    INTEGER = "INTEGER"
    LONG = "LONG"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    DATE = "DATE"
    TIME = "TIME"
    TIMESTAMP = "TIMESTAMP"
    BOOLEAN = "BOOLEAN"
    LIST = "LIST"


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamDef:
    """One declared parameter (a workflow's global, or a task's local IN / OUT)."""

    name: str
    value: str = ""
    direct: Direct = Direct.IN
    type: ParamType = ParamType.VARCHAR


def declared_name_problem(name: str) -> str | None:
    """Why `name` may not name a declared or exported parameter, or None if it may."""
    if len(name) > NAME_LIMIT or not _DOTTED.fullmatch(name):
        return (
            "expected a parameter name of letters, digits, '_' and '.', not starting with a "
            f"digit, at most {NAME_LIMIT} characters, found {name[:80]!r}"
        )
    if name.startswith(BUILTIN_PREFIX):
        return f"expected a name outside the built-ins' system.*, found {name!r}"
    return None if "." in name else name_problem(name)


def out_param_problem(name: str, value: str) -> str | None:
    """Why a task may not export `name=value`, or None if it may."""
    problem = declared_name_problem(name)
    if problem is not None:
        return problem
    if "\x00" in value:
        return f"expected parameter {name!r} without NUL characters, found one"
    if len(value.encode("utf-8", errors="surrogatepass")) > VALUE_LIMIT:
        return f"expected parameter {name!r} at most {VALUE_LIMIT} bytes"
    return None


def parse_params(raw: object, where: str, problems: list[str]) -> tuple[ParamDef, ...]:
    """Declared parameters from a list of `{name, value, direct, type}` mappings, or a
    mapping of names to values (IN, VARCHAR)."""
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        raw = [{"name": k, "value": v} for k, v in raw.items()]
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        problems.append(f"{where}: expected a list of parameters or a mapping of names to values")
        return ()
    out: list[ParamDef] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{at}: expected a mapping with name and value")
            continue
        for unknown in sorted(set(item) - {"name", "prop", "value", "direct", "type"}, key=str):
            problems.append(f"{at}: unknown field {unknown!r}")
        name = str(item.get("name") or item.get("prop") or "")
        problem = declared_name_problem(name)
        if problem is not None:
            problems.append(f"{at}: {problem}")
        if name in seen:
            problems.append(f"{at}: duplicate parameter {name!r}")
        seen.add(name)
        value = item.get("value", "")
        value = "" if value is None else value
        if not isinstance(value, str | int | float):
            problems.append(f"{at}.value: expected text or a number, found {value!r}")
            value = ""
        direct = _choice(Direct, item.get("direct"), f"{at}.direct", problems, Direct.IN)
        ptype = _choice(ParamType, item.get("type"), f"{at}.type", problems, ParamType.VARCHAR)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        problem = type_problem(ptype, text)
        if problem is not None:
            problems.append(f"{at}.value: {problem}")
        out.append(ParamDef(name=name, value=text, direct=direct, type=ptype))
    return tuple(out)


_TYPED: Final = {
    ParamType.INTEGER: re.compile(r"[-+]?\d{1,10}"),
    ParamType.LONG: re.compile(r"[-+]?\d{1,19}"),
    ParamType.FLOAT: re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"),
    ParamType.DOUBLE: re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"),
    ParamType.BOOLEAN: re.compile(r"true|false", re.IGNORECASE),
}


def type_problem(ptype: ParamType, value: str) -> str | None:
    """Why a declared literal value does not fit its type, or None. Empty values, and values
    that reference other parameters or time expressions, are checked only once resolved
    (by whatever reads them): a declaration cannot know them."""
    if not value or "${" in value or "$[" in value:
        return None
    pattern = _TYPED.get(ptype)
    if pattern is not None and not pattern.fullmatch(value.strip()):
        return f"expected a {ptype.value} value, found {value[:80]!r}"
    if ptype is ParamType.LIST and not (value.startswith("[") and value.endswith("]")):
        return f"expected a LIST as a JSON array, found {value[:80]!r}"
    return None


def _choice(kind: type[_E], value: object, where: str, problems: list[str], d: _E) -> _E:
    if value is None:
        return d
    name = str(value).upper()
    if name in kind.__members__:
        return kind[name]
    problems.append(f"{where}: expected one of {', '.join(kind.__members__)}, found {value!r}")
    return d
