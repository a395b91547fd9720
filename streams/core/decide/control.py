"""Deciding the operator's controls on an instance: pause, stop, resume, rerun (pure).

The states each control requires are DolphinScheduler's: pause a RUNNING instance; stop a
RUNNING or READY_PAUSE one; resume a PAUSE, STOP or FAILURE one; rerun (REPEAT_RUNNING) any
finished one (PAUSE, STOP, FAILURE, SUCCESS). A wrong state is refused.
"""

from __future__ import annotations

from datetime import datetime

from streams.core.commands import PauseWorkflow, RerunWorkflow, ResumeWorkflow, StopWorkflow
from streams.core.decide.scheduling import advance, apply_all, kill_active, reject, settle
from streams.core.enums import WorkflowState as W
from streams.core.events import (
    InstanceEvent,
    WorkflowPauseRequested,
    WorkflowRerun,
    WorkflowResumed,
    WorkflowStopRequested,
)
from streams.core.instance import InstanceState
from streams.core.placement import Workers
from streams.core.rejections import Reason

_ALLOWED: dict[type, frozenset[W]] = {
    PauseWorkflow: frozenset({W.RUNNING_EXECUTION}),
    StopWorkflow: frozenset({W.RUNNING_EXECUTION, W.READY_PAUSE}),
    ResumeWorkflow: frozenset({W.PAUSE, W.STOP, W.FAILURE}),
    RerunWorkflow: frozenset(w for w in W if w.finished),
}


def control_workflow(
    s: InstanceState, c: PauseWorkflow | StopWorkflow | ResumeWorkflow | RerunWorkflow,
    now: datetime, workers: Workers,
) -> list[InstanceEvent]:  # fmt: skip
    if c.command_id in s.applied:
        return []
    if not s.exists:
        return [reject(c, Reason.NOT_FOUND, now, f"expected instance {c.instance_id}, found none")]
    allowed = _ALLOWED[type(c)]
    assert s.state is not None
    if s.state not in allowed:
        expected = " or ".join(sorted(a.name for a in allowed))
        return [reject(c, Reason.INVALID_STATE, now, f"expected {expected}, found {s.state.name}")]
    iid, cause = c.instance_id, c.command_id
    events: list[InstanceEvent]
    if isinstance(c, PauseWorkflow):
        events = [WorkflowPauseRequested(instance_id=iid, cause=cause, at=now)]
    elif isinstance(c, StopWorkflow):
        requested = WorkflowStopRequested(instance_id=iid, cause=cause, at=now)
        events = [requested, *kill_active(s, cause, now)]
    else:
        restarted: InstanceEvent
        if isinstance(c, RerunWorkflow):
            restarted = WorkflowRerun(instance_id=iid, cause=cause, at=now)
        else:
            restarted = WorkflowResumed(instance_id=iid, cause=cause, at=now)
        return [restarted, *advance(apply_all(s, [restarted]), cause, now, workers)]
    return [*events, *settle(apply_all(s, events), cause, now)]
