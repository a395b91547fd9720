"""Deciding `StartWorkflow` (pure)."""

from __future__ import annotations

from datetime import datetime

from streams.core.commands import StartWorkflow
from streams.core.decide.scheduling import advance, reject
from streams.core.definition import scope_problems, start_problems
from streams.core.events import InstanceEvent, WorkflowStarted
from streams.core.evolve import evolve
from streams.core.instance import InstanceState
from streams.core.params import param_problems
from streams.core.placement import Workers
from streams.core.rejections import Reason


def start_workflow(
    s: InstanceState, c: StartWorkflow, now: datetime, workers: Workers
) -> list[InstanceEvent]:
    if c.command_id in s.applied:
        return []
    if s.exists:
        assert s.state is not None
        return [
            reject(
                c,
                Reason.ALREADY_EXISTS,
                now,
                f"expected no instance {c.instance_id}, found one in {s.state.name}",
            )
        ]
    # An unknown start node is a bad value in the graph the start asks to run: INVALID_DAG,
    # like every other reason the carried definition cannot run (no instance has a state yet).
    problems = start_problems(c.workflow) or scope_problems(c.workflow, c.start_nodes, c.scope)
    if problems:
        return [reject(c, Reason.INVALID_DAG, now, "; ".join(problems))]
    problems = param_problems(c.params)
    if problems:
        return [reject(c, Reason.INVALID_PARAMS, now, "; ".join(problems))]
    started = WorkflowStarted(
        instance_id=c.instance_id,
        workflow=c.workflow,
        params=c.params,
        requested_by=c.requested_by,
        cause=c.command_id,
        at=now,
        dry_run=c.dry_run,
        start_nodes=c.start_nodes,
        scope=c.scope,
        schedule_time=c.schedule_time,
    )
    return [started, *advance(evolve(s, started), c.command_id, now, workers)]
