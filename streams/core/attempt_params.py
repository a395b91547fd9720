"""The parameters of one attempt, from its instance's state (pure): the scopes
`streams.core.resolve` merges, gathered where the state keeps them.

Computed once, when the attempt is dispatched, and recorded in its `TaskDispatched`: a
re-sent dispatch record carries the same values, and the audit history shows what ran.
"""

from __future__ import annotations

from collections.abc import Mapping

from streams.core.definition import TaskDef
from streams.core.enums import TaskType
from streams.core.ids import task_instance_id
from streams.core.instance import InstanceState
from streams.core.resolve import builtins, resolve, upstream_pool
from streams.core.task_params import Direct, out_param_problem


def attempt_params(s: InstanceState, task_code: str, attempt: int) -> dict[str, str]:
    """Built-ins < global < direct upstream OUT values < local IN < startup, expanded."""
    assert s.workflow is not None and s.started_at is not None
    spec = s.task_def(task_code)
    base = s.schedule_time or s.started_at
    upstream = upstream_pool(
        (run.ended_at, run.out_params)
        for d in spec.depends
        if (run := s.tasks.get(d)) is not None and run.out_params
    )
    return resolve(
        builtin=builtins(
            base,
            instance_id=s.instance_id,
            workflow_code=s.workflow.code,
            task_code=task_code,
            task_instance=task_instance_id(s.instance_id, task_code, attempt),
        ),
        global_params=s.workflow.params,
        upstream=upstream,
        local=spec.params,
        startup=s.params,
    )


def response_name(task_code: str) -> str:
    """The OUT parameter an HTTP task exports its response body as."""
    return f"{task_code}.response"


def exported(spec: TaskDef, reported: Mapping[str, str]) -> dict[str, str]:
    """What a succeeded attempt passes downstream: the values it reported for the names it
    declares OUT (a declared value when it reported none), and an HTTP task's
    `<task>.response`; a value the rule refuses (`out_param_problem`) is dropped."""
    out: dict[str, str] = {}
    for p in spec.params:
        if p.direct is Direct.OUT:
            value = reported.get(p.name, p.value)
            if value or p.name in reported:
                out[p.name] = value
    if spec.type is TaskType.HTTP and response_name(spec.code) in reported:
        out[response_name(spec.code)] = reported[response_name(spec.code)]
    return {k: v for k, v in out.items() if out_param_problem(k, v) is None or _builtin_ok(k, v)}


def _builtin_ok(name: str, value: str) -> bool:
    # `<task>.response` is named by tideflow (a task code may hold '-'): only the value counts.
    return name.endswith(".response") and out_param_problem("response", value) is None
