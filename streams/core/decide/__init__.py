"""`decide(state, command, now, workers) -> events`: one function per command family (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from streams.core.commands import (
    Command,
    ForceTaskSuccess,
    PauseWorkflow,
    ReportTaskFinished,
    ReportTaskStarted,
    RerunTasks,
    RerunWorkflow,
    ResumeWorkflow,
    StartWorkflow,
    StopTask,
    StopWorkflow,
)
from streams.core.decide.control import control_workflow
from streams.core.decide.report import report_task_finished, report_task_started
from streams.core.decide.rerun_tasks import rerun_tasks
from streams.core.decide.start import start_workflow
from streams.core.decide.task_control import control_task
from streams.core.events import InstanceEvent
from streams.core.instance import InstanceState
from streams.core.placement import NO_WORKERS, Workers

Decider = Callable[[InstanceState, Any, datetime, Workers], list[InstanceEvent]]

DECIDERS: Final[Mapping[type, Decider]] = {
    StartWorkflow: start_workflow,
    ReportTaskStarted: report_task_started,
    ReportTaskFinished: report_task_finished,
    PauseWorkflow: control_workflow,
    StopWorkflow: control_workflow,
    ResumeWorkflow: control_workflow,
    RerunWorkflow: control_workflow,
    RerunTasks: rerun_tasks,
    ForceTaskSuccess: control_task,
    StopTask: control_task,
}


def decide(
    state: InstanceState, command: Command, now: datetime, workers: Workers = NO_WORKERS
) -> list[InstanceEvent]:
    """The events `command` causes in `state` (a `CommandRejected` when it is refused).

    Args:
        state: the instance as folded from its events (empty when it does not exist yet).
        command: the command to decide; one already applied yields no events.
        now: the time of the decision, recorded in the events.
        workers: live workers by group, from heartbeats; used to place dispatches.
    """
    return DECIDERS[type(command)](state, command, now, workers)
