"""Which record classes travel as Avro, and on which topics they may appear."""

from __future__ import annotations

from streams.core.commands import COMMAND_TYPES
from streams.core.events import (
    INSTANCE_EVENT_TYPES,
    PARTITION_EVENT_TYPES,
    WorkflowDefinitionRegistered,
)
from streams.core.schedules.backfill_messages import BACKFILL_COMMAND_TYPES, BACKFILL_EVENT_TYPES
from streams.core.schedules.messages import SCHEDULE_COMMAND_TYPES, SCHEDULE_EVENT_TYPES
from streams.core.worker_messages import KillTask, TaskAssignment, WorkerHeartbeat

NAMESPACE = "tideflow"

COMMANDS: tuple[type, ...] = COMMAND_TYPES
EVENTS: tuple[type, ...] = (*INSTANCE_EVENT_TYPES, *PARTITION_EVENT_TYPES)
DISPATCH: tuple[type, ...] = (TaskAssignment, KillTask)
HEARTBEATS: tuple[type, ...] = (WorkerHeartbeat,)
DEFINITIONS: tuple[type, ...] = (WorkflowDefinitionRegistered,)
# the schedule-commands topic: schedule and backfill commands
SCHEDULE_COMMANDS: tuple[type, ...] = (*SCHEDULE_COMMAND_TYPES, *BACKFILL_COMMAND_TYPES)
# the schedules topic: schedule and backfill facts
SCHEDULES: tuple[type, ...] = (*SCHEDULE_EVENT_TYPES, *BACKFILL_EVENT_TYPES)

ALL: tuple[type, ...] = (
    *COMMANDS,
    *EVENTS,
    *DISPATCH,
    *HEARTBEATS,
    *DEFINITIONS,
    *SCHEDULE_COMMANDS,
    *SCHEDULES,
)
