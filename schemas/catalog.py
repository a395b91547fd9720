"""Which record classes travel as Avro, and on which topics they may appear."""

from __future__ import annotations

from streams.core.commands import COMMAND_TYPES
from streams.core.events import (
    INSTANCE_EVENT_TYPES,
    PARTITION_EVENT_TYPES,
    WorkflowDefinitionRegistered,
)
from streams.core.worker_messages import KillTask, TaskAssignment, WorkerHeartbeat

NAMESPACE = "tideflow"

COMMANDS: tuple[type, ...] = COMMAND_TYPES
EVENTS: tuple[type, ...] = (*INSTANCE_EVENT_TYPES, *PARTITION_EVENT_TYPES)
DISPATCH: tuple[type, ...] = (TaskAssignment, KillTask)
HEARTBEATS: tuple[type, ...] = (WorkerHeartbeat,)
DEFINITIONS: tuple[type, ...] = (WorkflowDefinitionRegistered,)

ALL: tuple[type, ...] = (*COMMANDS, *EVENTS, *DISPATCH, *HEARTBEATS, *DEFINITIONS)
