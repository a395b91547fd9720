"""Deciding `RerunTasks`, DolphinScheduler's EXECUTE_TASK (pure).

Chosen tasks of a SUCCESS or FAILURE instance run again inside it: the start nodes alone
(TASK_ONLY), with the tasks upstream of them (TASK_PRE) or downstream (TASK_POST), chosen
among the tasks the instance runs (`definition.chosen`). Each runs as a new attempt (its
earlier attempts become not valid; numbers keep counting; a fresh retry budget); every other
task keeps its result and is not run, even when it is ready. The chosen tasks keep their
dependencies, so each task before them that is not chosen must have succeeded; otherwise
the command is refused (INVALID_STATE). The run ends SUCCESS when every task of the instance
has succeeded, otherwise FAILURE naming the failures and the tasks never run (a resume runs
those). PAUSE and STOP instances are resumed instead: tideflow narrows EXECUTE_TASK to
instances whose run is complete. A start node the instance does not run is NOT_FOUND.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from streams.core.commands import RerunTasks
from streams.core.decide.scheduling import advance, apply_all, reject
from streams.core.definition import chosen
from streams.core.enums import WorkflowState as W
from streams.core.events import InstanceEvent, TasksRerun
from streams.core.instance import InstanceState
from streams.core.placement import Workers
from streams.core.rejections import Reason

_ALLOWED = frozenset({W.FAILURE, W.SUCCESS})


def rerun_tasks(
    s: InstanceState, c: RerunTasks, now: datetime, workers: Workers
) -> list[InstanceEvent]:
    if c.command_id in s.applied:
        return []
    if not s.exists:
        return [reject(c, Reason.NOT_FOUND, now, f"expected instance {c.instance_id}, found none")]
    assert s.state is not None and s.workflow is not None
    if s.state not in _ALLOWED:
        return [
            reject(
                c, Reason.INVALID_STATE, now, f"expected FAILURE or SUCCESS, found {s.state.name}"
            )
        ]
    unknown = [n for n in dict.fromkeys(c.start_nodes) if n not in s.defs]
    if unknown or not c.start_nodes:
        found = ", ".join(repr(n) for n in unknown) or "none"
        message = f"expected a task that instance {c.instance_id} runs, found {found}"
        return [reject(c, Reason.NOT_FOUND, now, message)]
    run = chosen(replace(s.workflow, tasks=tuple(s.defs.values())), c.start_nodes, c.scope)
    codes = [t.code for t in run.tasks]
    before = sorted(
        {d for code in codes for d in s.defs[code].depends if d not in codes}
        - {d for d, t in s.tasks.items() if t.state.succeeded}
    )
    if before:
        found = ", ".join(
            f"{d} {s.tasks[d].state.name}" if d in s.tasks else f"{d} never run" for d in before
        )
        message = f"expected every task before the chosen ones succeeded, found {found}"
        return [reject(c, Reason.INVALID_STATE, now, message)]
    rerun = TasksRerun(
        instance_id=c.instance_id, task_codes=tuple(codes), cause=c.command_id, at=now
    )
    return [rerun, *advance(apply_all(s, [rerun]), c.command_id, now, workers)]
