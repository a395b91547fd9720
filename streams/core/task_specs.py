"""Type-specific task settings: one typed, versioned record per task (pure).

`TaskDef.spec` holds what only some task types need, so `TaskDef` keeps its common fields
(DolphinScheduler's `taskParams` split the same way): the PYTHON task's environment, the HTTP
task's request and check, the SQL task's data source and statements. The script itself (a
SHELL or PYTHON script, a SQL statement) stays in `TaskDef.command`. Nothing here names a
credential or an interpreter path: an environment and a data source are names the worker
resolves from its own configuration.

Authored in a workflow file at the task's level:

    environment: py3                 # PYTHON
    http: {url: ..., method: POST, params: [...], body: ..., check: status_code_custom,
           condition: "201", connect_timeout: 5s, read_timeout: 30s}
    sql: {datasource: warehouse, query: true, pre: [...], post: [...]}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from streams.core.enums import TaskType

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
DEFAULT_CONNECT_TIMEOUT_S: Final = 60.0  # DolphinScheduler's defaults (60 s each)
DEFAULT_READ_TIMEOUT_S: Final = 60.0


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    HEAD = "HEAD"
    PUT = "PUT"
    DELETE = "DELETE"


class HttpParamType(StrEnum):
    """Where an `http.params` entry goes: the query, a form/JSON body field, a header."""

    PARAMETER = "PARAMETER"
    BODY = "BODY"
    HEADERS = "HEADERS"


class HttpCheck(StrEnum):
    STATUS_CODE_DEFAULT = "STATUS_CODE_DEFAULT"  # 200
    STATUS_CODE_CUSTOM = "STATUS_CODE_CUSTOM"  # `condition` is the status code
    BODY_CONTAINS = "BODY_CONTAINS"
    BODY_NOT_CONTAINS = "BODY_NOT_CONTAINS"


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpParam:
    name: str
    value: str = ""
    type: HttpParamType = HttpParamType.PARAMETER


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSpec:
    url: str
    method: HttpMethod = HttpMethod.GET
    params: tuple[HttpParam, ...] = ()
    body: str = ""
    check: HttpCheck = HttpCheck.STATUS_CODE_DEFAULT
    condition: str = ""
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S


@dataclass(frozen=True, slots=True, kw_only=True)
class SqlSpec:
    datasource: str  # a name in the worker's configuration; never a URL or a credential
    query: bool = True  # DolphinScheduler's sqlType 0 (query) / 1 (non-query)
    pre: tuple[str, ...] = ()
    post: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSpec:
    """The settings of one task's type; the fields of other types stay empty."""

    environment: str = ""  # PYTHON: the worker's named environment ("" = its default)
    http: HttpSpec | None = None
    sql: SqlSpec | None = None


SPEC_FIELDS: Final = ("environment", "http", "sql")


Durations = Callable[[object, str, list[str]], float | None]


def parse_spec(
    raw: Mapping[str, Any],
    ttype: TaskType,
    where: str,
    problems: list[str],
    durations: Durations,
) -> TaskSpec | None:
    """The spec from a task's authored fields; None when the type needs none. `durations`
    is the definition's duration rule (`definition.parse_duration`)."""
    environment = raw.get("environment") or ""
    if environment and not _NAME.fullmatch(str(environment)):
        problems.append(f"{where}.environment: expected a name, found {environment!r}")
    http = _http(raw.get("http"), f"{where}.http", problems, durations) if "http" in raw else None
    sql = _sql(raw.get("sql"), f"{where}.sql", problems) if "sql" in raw else None
    if ttype is TaskType.HTTP and http is None:
        problems.append(f"{where}.http: an HTTP task needs http.url")
    if ttype is TaskType.SQL and sql is None:
        problems.append(f"{where}.sql: a SQL task needs sql.datasource")
    for name, given, wanted in (("http", http, TaskType.HTTP), ("sql", sql, TaskType.SQL)):
        if given is not None and ttype is not wanted:
            problems.append(f"{where}.{name}: only a {wanted.value} task takes it")
    if environment and ttype is not TaskType.PYTHON:
        problems.append(f"{where}.environment: only a PYTHON task takes it")
    if not (environment or http or sql):
        return None
    return TaskSpec(environment=str(environment), http=http, sql=sql)


def spec_to_authored(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored form of a spec (`asdict`) as a task's authored fields."""
    if not spec:
        return {}
    out: dict[str, Any] = {}
    if spec.get("environment"):
        out["environment"] = spec["environment"]
    if spec.get("http"):
        h = dict(spec["http"])
        h["connect_timeout"] = h.pop("connect_timeout_s", None)
        h["read_timeout"] = h.pop("read_timeout_s", None)
        out["http"] = h
    if spec.get("sql"):
        out["sql"] = dict(spec["sql"])
    return out


def _choice(kind: Any, value: object, where: str, problems: list[str], default: Any) -> Any:
    if value is None:
        return default
    name = str(value).upper()
    if name in kind.__members__:
        return kind[name]
    problems.append(f"{where}: expected one of {', '.join(kind.__members__)}, found {value!r}")
    return default


def _seconds(
    durations: Durations, value: object, where: str, problems: list[str], default: float
) -> float:
    seconds = durations(value, where, problems)
    if seconds is None:
        return default
    if seconds <= 0:
        problems.append(f"{where}: expected more than 0, found {value!r}")
        return default
    return seconds


def _http(raw: object, where: str, problems: list[str], durations: Durations) -> HttpSpec | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping with url")
        return None
    known = {"url", "method", "params", "body", "check", "condition"}
    known |= {"connect_timeout", "read_timeout"}
    for unknown in sorted(set(raw) - known, key=str):
        problems.append(f"{where}: unknown field {unknown!r}")
    url = str(raw.get("url") or "")
    if not re.match(r"^(https?://|\$\{)", url):
        problems.append(f"{where}.url: expected an http:// or https:// URL, found {url!r}")
    params: list[HttpParam] = []
    raw_params = raw.get("params") or ()
    if not isinstance(raw_params, Sequence) or isinstance(raw_params, str):
        problems.append(f"{where}.params: expected a list of {{name, value, type}}")
        raw_params = ()
    for i, p in enumerate(raw_params):
        if not isinstance(p, Mapping) or not p.get("name"):
            problems.append(f"{where}.params[{i}]: expected a mapping with a name")
            continue
        ptype = _choice(
            HttpParamType,
            p.get("type"),
            f"{where}.params[{i}].type",
            problems,
            HttpParamType.PARAMETER,
        )
        params.append(HttpParam(name=str(p["name"]), value=str(p.get("value", "")), type=ptype))
    check = _choice(
        HttpCheck, raw.get("check"), f"{where}.check", problems, HttpCheck.STATUS_CODE_DEFAULT
    )
    condition = str(raw.get("condition") or "")
    if check is HttpCheck.STATUS_CODE_CUSTOM and not condition.strip().isdigit():
        problems.append(f"{where}.condition: expected a status code, found {condition!r}")
    if check in (HttpCheck.BODY_CONTAINS, HttpCheck.BODY_NOT_CONTAINS) and not condition:
        problems.append(f"{where}.condition: expected the text to look for")
    return HttpSpec(
        url=url,
        method=_choice(HttpMethod, raw.get("method"), f"{where}.method", problems, HttpMethod.GET),
        params=tuple(params),
        body=str(raw.get("body") or ""),
        check=check,
        condition=condition,
        connect_timeout_s=_seconds(
            durations,
            raw.get("connect_timeout"),
            f"{where}.connect_timeout",
            problems,
            DEFAULT_CONNECT_TIMEOUT_S,
        ),
        read_timeout_s=_seconds(
            durations,
            raw.get("read_timeout"),
            f"{where}.read_timeout",
            problems,
            DEFAULT_READ_TIMEOUT_S,
        ),
    )


def _statements(raw: object, where: str, problems: list[str]) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, Sequence) or not all(isinstance(s, str) for s in raw):
        problems.append(f"{where}: expected a list of statements")
        return ()
    return tuple(raw)


def _sql(raw: object, where: str, problems: list[str]) -> SqlSpec | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping with datasource")
        return None
    for unknown in sorted(set(raw) - {"datasource", "query", "pre", "post"}, key=str):
        problems.append(f"{where}: unknown field {unknown!r}")
    datasource = str(raw.get("datasource") or "")
    if not _NAME.fullmatch(datasource):
        problems.append(f"{where}.datasource: expected a data source name, found {datasource!r}")
    query = raw.get("query", True)
    if not isinstance(query, bool):
        problems.append(f"{where}.query: expected true or false, found {query!r}")
        query = True
    return SqlSpec(
        datasource=datasource,
        query=query,
        pre=_statements(raw.get("pre"), f"{where}.pre", problems),
        post=_statements(raw.get("post"), f"{where}.post", problems),
    )
