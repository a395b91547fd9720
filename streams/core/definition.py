"""Workflow definitions: frozen records, parsed from plain mappings (YAML/JSON) and validated.

Pure: parsing and validation only; reading files belongs to the edges (api/). Validation
collects every problem and names it: a bad field, a duplicate task code, an unknown
dependency, a cycle with its path.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from functools import lru_cache
from typing import Any, Final

from streams.core.dag import find_cycle
from streams.core.enums import FailureStrategy, Priority, TaskDependType, TaskType, TimeoutStrategy
from streams.core.task_params import ParamDef, parse_params
from streams.core.task_specs import SPEC_FIELDS, TaskSpec, parse_spec, spec_to_authored

DEFAULT_WORKER_GROUP = "default"
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
MAX_DURATION_S = 366 * 24 * 3600.0  # beyond it, `now + duration` overflows or means a typo


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDef:
    code: str
    type: TaskType = TaskType.SHELL
    command: str = ""
    depends: tuple[str, ...] = ()
    retries: int = 0
    retry_interval_s: float = 0.0
    timeout_s: float | None = None
    worker_group: str = DEFAULT_WORKER_GROUP
    priority: Priority = Priority.MEDIUM
    description: str = ""
    # DolphinScheduler's run flag: False (flag NO) disables the task; it is skipped and its
    # dependants depend on its own upstream tasks instead (`runnable`).
    run: bool = True
    # What passing `timeout_s` does (DolphinScheduler's timeout strategy): FAILED, the worker
    # kills the attempt (as before the field); WARN, a `TaskTimedOut` warning only; both.
    timeout_strategy: TimeoutStrategy = TimeoutStrategy.FAILED
    # DolphinScheduler's delay time: the task's first attempt of a run waits in
    # DELAY_EXECUTION until it was first ready + `delay_s` (`decide/scheduling.dispatch`).
    delay_s: float = 0.0
    # Local parameters, IN and OUT (`task_params`), and the settings of the task's type
    # (`task_specs`: PYTHON's environment, HTTP's request, SQL's data source).
    params: tuple[ParamDef, ...] = ()
    spec: TaskSpec | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowDef:
    code: str
    version: int = 0  # 0 until registered; registration assigns the next version
    description: str = ""
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE
    tasks: tuple[TaskDef, ...] = field(default_factory=tuple)
    # Past this many seconds from the start, a `WorkflowTimedOut` warning (once per run).
    timeout_s: float | None = None
    params: tuple[ParamDef, ...] = ()  # global parameters: IN values for every task

    def task(self, code: str) -> TaskDef:
        return next(t for t in self.tasks if t.code == code)

    def content_hash(self) -> str:
        """Digest of everything but the version: registering the same content is a no-op."""
        body = asdict(replace(self, version=0))
        # Fields at their default are left out: definitions from before them keep their hash.
        if body["timeout_s"] is None:
            del body["timeout_s"]
        if not body["params"]:  # defaults left out: earlier definitions keep their hash
            del body["params"]
        for task in body["tasks"]:
            if task["run"]:
                del task["run"]
            if task["timeout_strategy"] is TimeoutStrategy.FAILED:
                del task["timeout_strategy"]
            if not task["delay_s"]:
                del task["delay_s"]
            for name in ("params", "spec"):
                if not task[name]:
                    del task[name]
        return hashlib.blake2b(
            json.dumps(body, sort_keys=True, default=str).encode(), digest_size=16
        ).hexdigest()


class InvalidDefinition(ValueError):
    """A workflow definition that cannot run; `problems` names each reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def parse_duration(value: object, where: str, problems: list[str]) -> float | None:
    """Seconds from a number or a string like '500ms', '10s', '2m', '1h'."""
    if value is None:
        return None
    if isinstance(value, bool):
        problems.append(f"{where}: expected a duration, found {value!r}")
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            problems.append(f"{where}: expected a duration like 30s, 2m, 1h or 1d, found {value!r}")
            return None
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if not math.isfinite(seconds):
        problems.append(f"{where}: expected a finite duration, found {value!r}")
        return None
    if seconds < 0:
        problems.append(f"{where}: must not be negative, found {value!r}")
        return None
    if seconds > MAX_DURATION_S:
        problems.append(f"{where}: must be at most 366 days, found {value!r}")
        return None
    return seconds


def _enum(kind: Any, value: object, where: str, problems: list[str], default: Any) -> Any:
    if value is None:
        return default
    name = str(value).upper()
    if name in kind.__members__:
        return kind[name]
    choices = ", ".join(m.lower() for m in kind.__members__)
    problems.append(f"{where}: expected one of {choices}, found {value!r}")
    return default


def _int(value: object, where: str, problems: list[str], default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where}: expected a whole number >= 0, found {value!r}")
        return default
    return value


_TASK_FIELDS = {
    "code", "name", "type", "command", "depends", "retries", "retry_interval",
    "timeout", "worker_group", "priority", "description", "run", "timeout_strategy", "delay",
    "params", "spec", *SPEC_FIELDS,
}  # fmt: skip
_WORKFLOW_FIELDS = {
    "code", "description", "failure_strategy", "worker_group", "tasks", "timeout", "params",
}  # fmt: skip
_SCRIPTED = (TaskType.SHELL, TaskType.PYTHON, TaskType.SQL)


def _parse_task(raw: object, i: int, group: str, problems: list[str]) -> TaskDef | None:
    if not isinstance(raw, Mapping):
        problems.append(f"tasks[{i}]: expected a mapping, found {type(raw).__name__}")
        return None
    code = str(raw.get("code") or raw.get("name") or "")
    where = f"task {code!r}" if code else f"tasks[{i}]"
    stored_spec = raw.get("spec")
    if isinstance(stored_spec, Mapping):  # the stored form: its fields as authored ones
        raw = {**{k: v for k, v in raw.items() if k != "spec"}, **spec_to_authored(stored_spec)}
    for unknown in sorted(set(raw) - _TASK_FIELDS, key=str):
        problems.append(f"{where}: unknown field {unknown!r}")
    if not _CODE.match(code):
        problems.append(f"{where}: code must be 1-128 letters, digits, '_', '-' or '.'")
    ttype = _enum(TaskType, raw.get("type"), f"{where}.type", problems, TaskType.SHELL)
    command = raw.get("command", "")
    if not isinstance(command, str):
        problems.append(f"{where}.command: expected a string, found {type(command).__name__}")
        command = ""
    if ttype in _SCRIPTED and not command.strip():
        problems.append(f"{where}.command: a {ttype.value.lower()} task needs a command")
    depends = raw.get("depends") or ()
    if isinstance(depends, str):
        depends = (depends,)
    if not isinstance(depends, Sequence) or not all(isinstance(d, str) for d in depends):
        problems.append(f"{where}.depends: expected a list of task codes")
        depends = ()
    timeout = parse_duration(raw.get("timeout"), f"{where}.timeout", problems)
    run = raw.get("run", True)
    if not isinstance(run, bool):
        problems.append(f"{where}.run: expected true or false, found {run!r}")
        run = True
    return TaskDef(
        code=code,
        type=ttype,
        command=command,
        depends=tuple(depends),
        retries=_int(raw.get("retries"), f"{where}.retries", problems, 0),
        retry_interval_s=parse_duration(
            raw.get("retry_interval"), f"{where}.retry_interval", problems
        )
        or 0.0,
        timeout_s=timeout if timeout else None,
        worker_group=str(raw.get("worker_group") or group),
        priority=_enum(
            Priority, raw.get("priority"), f"{where}.priority", problems, Priority.MEDIUM
        ),
        description=str(raw.get("description") or ""),
        run=run,
        timeout_strategy=_enum(
            TimeoutStrategy,
            raw.get("timeout_strategy"),
            f"{where}.timeout_strategy",
            problems,
            TimeoutStrategy.FAILED,
        ),
        delay_s=parse_duration(raw.get("delay"), f"{where}.delay", problems) or 0.0,
        params=parse_params(raw.get("params"), f"{where}.params", problems),
        spec=parse_spec(raw, ttype, where, problems, parse_duration),
    )


def parse_workflow(raw: object) -> WorkflowDef:
    """Build and validate a definition from a mapping; raises `InvalidDefinition`."""
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        raise InvalidDefinition([f"expected a mapping at the top, found {type(raw).__name__}"])
    for unknown in sorted(set(raw) - _WORKFLOW_FIELDS, key=str):
        problems.append(f"unknown field {unknown!r}")
    code = str(raw.get("code") or "")
    if not _CODE.match(code):
        problems.append("code: must be 1-128 letters, digits, '_', '-' or '.'")
    group = str(raw.get("worker_group") or DEFAULT_WORKER_GROUP)
    raw_tasks = raw.get("tasks")
    if not isinstance(raw_tasks, Sequence) or isinstance(raw_tasks, str) or not raw_tasks:
        problems.append("tasks: expected a non-empty list of tasks")
        raw_tasks = []
    parsed = [_parse_task(t, i, group, problems) for i, t in enumerate(raw_tasks)]
    tasks = tuple(t for t in parsed if t is not None)
    workflow = WorkflowDef(
        code=code,
        description=str(raw.get("description") or ""),
        failure_strategy=_enum(
            FailureStrategy,
            raw.get("failure_strategy"),
            "failure_strategy",
            problems,
            FailureStrategy.CONTINUE,
        ),
        tasks=tasks,
        timeout_s=parse_duration(raw.get("timeout"), "timeout", problems) or None,
        params=parse_params(raw.get("params"), "params", problems),
    )
    problems.extend(dag_problems(workflow))
    if problems:
        raise InvalidDefinition(problems)
    return workflow


@lru_cache(maxsize=1024)  # every start re-checks the definition it carries; most repeat
def start_problems(workflow: WorkflowDef) -> tuple[str, ...]:
    """Why a definition that a start carries cannot run: its graph's problems, and the
    durations registration refuses (not 0 to 366 days): a retry interval no decision can
    compute with (`now + interval` overflows or is NaN), a timeout no worker can arm. The
    definition is only as good as its sender: any producer may write a `StartWorkflow` with
    any value the schema allows."""
    problems = list(dag_problems(workflow))
    for t in workflow.tasks:
        parse_duration(t.retry_interval_s, f"task {t.code!r}.retry_interval", problems)
        if t.timeout_s is not None:
            parse_duration(t.timeout_s, f"task {t.code!r}.timeout", problems)
        parse_duration(t.delay_s, f"task {t.code!r}.delay", problems)
    if workflow.timeout_s is not None:
        parse_duration(workflow.timeout_s, "timeout", problems)
    return tuple(problems)


@lru_cache(maxsize=1024)  # one per definition, not per instance
def runnable(workflow: WorkflowDef) -> WorkflowDef:
    """The tasks that run (DolphinScheduler's run flag): a disabled task (`run=False`) is left
    out, and each task that depended on it depends on the disabled task's own upstream tasks
    instead (through any chain of disabled tasks). The same object when none is disabled.
    Expects a valid DAG (`start_problems` empty)."""
    if all(t.run for t in workflow.tasks):
        return workflow
    by_code = {t.code: t for t in workflow.tasks}

    def seen_through(code: str, visiting: frozenset[str]) -> list[str]:
        task = by_code.get(code)
        if task is None or task.run:
            return [code]
        if code in visiting:  # not a DAG: refused at start, never folded; do not loop
            return []
        return [u for d in task.depends for u in seen_through(d, visiting | {code})]

    tasks = tuple(
        replace(
            t,
            depends=tuple(
                dict.fromkeys(u for d in t.depends for u in seen_through(d, frozenset()))
            ),
        )
        for t in workflow.tasks
        if t.run
    )
    return replace(workflow, tasks=tasks)


def scope_problems(
    workflow: WorkflowDef, start_nodes: tuple[str, ...], scope: TaskDependType
) -> tuple[str, ...]:
    """Why chosen start nodes cannot be run: a code that is not a task of the workflow, or
    TASK_ONLY / TASK_PRE with none (DolphinScheduler requires a start node list for both)."""
    codes = {t.code for t in workflow.tasks}
    problems = [
        f"start node: expected a task of the workflow, found {n!r}"
        for n in dict.fromkeys(start_nodes)
        if n not in codes
    ]
    if not start_nodes and scope is not TaskDependType.TASK_POST:
        problems.append(f"start nodes: expected at least one with scope {scope.name}, found none")
    return tuple(problems)


@lru_cache(maxsize=1024)
def chosen(
    workflow: WorkflowDef, start_nodes: tuple[str, ...], scope: TaskDependType
) -> WorkflowDef:
    """The tasks a start with start nodes runs (DolphinScheduler's `startNodeList` and
    `taskDependType`): the start nodes (TASK_ONLY), with every task upstream of them
    (TASK_PRE) or downstream of them (TASK_POST). The chosen tasks run as if the rest did not
    exist: a dependency on a task left out is dropped, so a chosen task whose upstream tasks
    are all left out is a root. No start nodes: the whole workflow, the same object. Chosen on
    the whole graph before the run flag (`runnable`) sees through disabled tasks, as
    DolphinScheduler builds its DAG. Expects `scope_problems` and `start_problems` empty."""
    if not start_nodes:
        return workflow
    keep = set(start_nodes)
    if scope is not TaskDependType.TASK_ONLY:
        if scope is TaskDependType.TASK_PRE:
            nexts = {t.code: t.depends for t in workflow.tasks}
        else:
            below: dict[str, list[str]] = {t.code: [] for t in workflow.tasks}
            for t in workflow.tasks:
                for d in t.depends:
                    below.setdefault(d, []).append(t.code)
            nexts = {c: tuple(ds) for c, ds in below.items()}
        todo = list(keep)
        while todo:
            for n in nexts.get(todo.pop(), ()):
                if n not in keep:
                    keep.add(n)
                    todo.append(n)
    tasks = tuple(
        replace(t, depends=tuple(d for d in t.depends if d in keep))
        for t in workflow.tasks
        if t.code in keep
    )
    return replace(workflow, tasks=tasks)


def dag_problems(workflow: WorkflowDef) -> tuple[str, ...]:
    """Structural problems of the task graph: duplicates, unknown dependencies, cycles."""
    problems: list[str] = []
    seen: set[str] = set()
    for t in workflow.tasks:
        if t.code in seen:
            problems.append(f"duplicate task code {t.code!r}")
        seen.add(t.code)
    for t in workflow.tasks:
        for d in t.depends:
            if d not in seen:
                problems.append(f"task {t.code!r} depends on unknown task {d!r}")
            if d == t.code:
                problems.append(f"task {t.code!r} depends on itself")
    edges = [(d, t.code) for t in workflow.tasks for d in t.depends if d in seen and d != t.code]
    cycle = find_cycle(seen, edges)
    if cycle:
        problems.append("cycle: " + " -> ".join(cycle))
    return tuple(problems)


def workflow_to_dict(workflow: WorkflowDef) -> dict[str, Any]:
    """The stored JSON form (read models, APIs): every field under its own name, enums by
    name, tuples as lists. `workflow_from_dict` reads it back."""
    plain = _plain(asdict(workflow))
    assert isinstance(plain, dict)
    return plain


def _plain(value: object) -> object:
    # Walked by hand: `json.dumps(default=...)` never sees the IntEnums (they are ints to it).
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# Task fields a user's file names otherwise (without the unit: `timeout: 10m`); the stored
# form keeps the record's names, which the read model's rows already hold.
_AUTHORED_AS: Final[Mapping[str, str]] = {
    "retry_interval_s": "retry_interval",
    "timeout_s": "timeout",
    "delay_s": "delay",
}


def _authored_task(task: Mapping[str, Any]) -> dict[str, Any]:
    out = {_AUTHORED_AS.get(k, k): v for k, v in task.items() if k != "spec"}
    spec = task.get("spec")
    out.update(spec_to_authored(spec if isinstance(spec, Mapping) else None))
    return out


def workflow_from_dict(data: object) -> WorkflowDef:
    """The definition `workflow_to_dict` wrote (its exact inverse, version included),
    validated as `parse_workflow` validates a user's file; raises `InvalidDefinition`."""
    if not isinstance(data, Mapping):
        raise InvalidDefinition([f"expected a mapping at the top, found {type(data).__name__}"])
    problems: list[str] = []
    version = _int(data.get("version"), "version", problems, 0)
    authored = {_AUTHORED_AS.get(k, k): v for k, v in data.items() if k != "version"}
    tasks = authored.get("tasks")
    if isinstance(tasks, list | tuple):
        authored["tasks"] = [_authored_task(t) if isinstance(t, Mapping) else t for t in tasks]
    try:
        workflow = parse_workflow(authored)
    except InvalidDefinition as invalid:
        raise InvalidDefinition([*problems, *invalid.problems]) from None
    if problems:
        raise InvalidDefinition(problems)
    return replace(workflow, version=version)
