"""Topic names under the deployment's prefix, so several deployments can share a cluster."""

from __future__ import annotations


class Topics:
    """Every topic tideflow reads or writes, named under `prefix`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.commands = f"{prefix}commands"
        self.events = f"{prefix}events"
        self.dispatch = f"{prefix}dispatch"
        self.heartbeats = f"{prefix}heartbeats"
        self.definitions = f"{prefix}definitions"
        self.task_logs = f"{prefix}task-logs"
        self.dead_letter = f"{prefix}dead-letter"
        # Schedules (keyed by schedule id): commands to the scheduler, and its log of facts.
        self.schedule_commands = f"{prefix}schedule-commands"
        self.schedules = f"{prefix}schedules"

    def all(self) -> dict[str, str]:
        """Topic name -> cleanup policy."""
        return {
            self.commands: "delete",
            self.events: "delete",  # retained forever via retention.ms=-1 (source of truth)
            self.dispatch: "delete",
            self.heartbeats: "compact",
            self.definitions: "compact",
            self.task_logs: "delete",
            self.dead_letter: "delete",
            self.schedule_commands: "delete",
            # Retained forever like events, not compacted: the fire history is the proof that
            # each fire time started one instance, and a replay rebuilds it.
            self.schedules: "delete",
        }
