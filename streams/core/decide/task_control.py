"""Deciding the operator's controls on one task: force success, stop (pure).

The states each requires are DolphinScheduler's (DOLPHINSCHEDULER.md §2):

* **Force success** (`ForceTaskSuccess`) applies to the FAILURE or KILL attempt of a
  *finished* instance (PAUSE, STOP, FAILURE, SUCCESS). The attempt becomes FORCED_SUCCESS
  and counts as a success from then on: a retry it was waiting for is dropped, and its
  dependants run when the instance is resumed. If it was the last task not succeeded, the
  instance becomes SUCCESS at once; otherwise it keeps its state.
* **Stop a task** (`StopTask`) applies to an active attempt (DISPATCH or RUNNING_EXECUTION,
  not already being killed) of a RUNNING_EXECUTION or READY_PAUSE instance: the worker is
  asked to kill it (`TaskKillRequested`, as a stop of the whole instance does), and the
  attempt ends KILL, which is never retried. What the instance does next is what it does
  after any KILL during normal running, as in DolphinScheduler, where a task that ends KILL
  while the instance runs makes it FAILURE: under failure strategy CONTINUE the branches
  that do not depend on the task go on and the instance ends FAILURE once nothing else can
  run; under END the other active attempts are killed and it ends FAILURE at once; a
  READY_PAUSE instance ends PAUSE. Resume (which runs the killed task again) or force
  success (which lets its dependants run after a resume) take it from there.

A wrong instance state, or a task in the wrong state, is refused INVALID_STATE; an unknown
instance or task code NOT_FOUND.
"""

from __future__ import annotations

from datetime import datetime

from streams.core.commands import ForceTaskSuccess, StopTask
from streams.core.decide.scheduling import apply_all, reject, settle
from streams.core.enums import TaskState
from streams.core.enums import WorkflowState as W
from streams.core.events import CommandRejected, InstanceEvent, TaskKillRequested, TaskSuccessForced
from streams.core.instance import InstanceState, TaskRun
from streams.core.placement import Workers
from streams.core.rejections import Reason

_INSTANCE_ALLOWED: dict[type, frozenset[W]] = {
    ForceTaskSuccess: frozenset(w for w in W if w.finished),
    StopTask: frozenset({W.RUNNING_EXECUTION, W.READY_PAUSE}),
}
_TASK_ALLOWED: dict[type, frozenset[TaskState]] = {
    ForceTaskSuccess: frozenset({TaskState.FAILURE, TaskState.KILL}),
    StopTask: frozenset({TaskState.DISPATCH, TaskState.RUNNING_EXECUTION}),
}


def _names(states: frozenset[W] | frozenset[TaskState]) -> str:
    return " or ".join(sorted(s.name for s in states))


def _task_or_refusal(
    s: InstanceState, c: ForceTaskSuccess | StopTask, now: datetime
) -> TaskRun | CommandRejected:
    """The task's current attempt when both the instance and the attempt are in a state the
    command allows; the refusal otherwise."""
    if not s.exists:
        return reject(c, Reason.NOT_FOUND, now, f"expected instance {c.instance_id}, found none")
    assert s.state is not None
    allowed = _INSTANCE_ALLOWED[type(c)]
    if s.state not in allowed:
        return reject(
            c, Reason.INVALID_STATE, now, f"expected {_names(allowed)}, found {s.state.name}"
        )
    if c.task_code not in s.defs:
        assert s.workflow is not None
        left_out = next((t for t in s.workflow.tasks if t.code == c.task_code), None)
        if left_out is not None and not left_out.run:  # left out by the run flag
            message = f"expected task {c.task_code} enabled, found it disabled (run: false)"
            return reject(c, Reason.INVALID_STATE, now, message)
        if left_out is not None:  # left out by the start nodes' scope (`definition.chosen`)
            message = f"expected task {c.task_code} in the instance's scope, found it outside"
            return reject(c, Reason.INVALID_STATE, now, message)
        return reject(
            c, Reason.NOT_FOUND, now, f"expected task {c.task_code} in {c.instance_id}, found none"
        )
    wanted = _TASK_ALLOWED[type(c)]
    task = s.tasks.get(c.task_code)
    if task is None:
        found = "no attempt"
    elif task.kill_requested and task.state.active:
        found = f"{task.state.name} being killed"
    elif task.state in wanted:
        return task
    else:
        found = task.state.name
    message = f"expected task {c.task_code} {_names(wanted)}, found {found}"
    return reject(c, Reason.INVALID_STATE, now, message)


def control_task(
    s: InstanceState, c: ForceTaskSuccess | StopTask, now: datetime, workers: Workers
) -> list[InstanceEvent]:
    if c.command_id in s.applied:
        return []
    task = _task_or_refusal(s, c, now)
    if isinstance(task, CommandRejected):
        return [task]
    common = {
        "instance_id": c.instance_id,
        "task_code": c.task_code,
        "attempt": task.attempt,
        "cause": c.command_id,
        "at": now,
    }
    if isinstance(c, StopTask):
        return [TaskKillRequested(worker_id=task.worker_id, **common)]  # type: ignore[arg-type]
    forced = TaskSuccessForced(**common)  # type: ignore[arg-type]
    # settle: SUCCESS when every task now counts as succeeded; nothing otherwise (the
    # instance is finished and nothing is active)
    return [forced, *settle(apply_all(s, [forced]), c.command_id, now)]
