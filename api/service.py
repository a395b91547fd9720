"""The operations users have, shared by the HTTP API and the CLI.

Writes are commands or definition events produced to Kafka; reads come from the PostgreSQL
read models. Nothing here decides: masters do.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psycopg

from api.definitions import from_stored
from api.time_travel import Point, instance_at, point_text
from projections import queries
from projections.pages import Page
from projections.retention import retired
from projections.stats import stats as projection_stats
from streams.core.commands import (
    ForceTaskSuccess,
    PauseWorkflow,
    RerunTasks,
    RerunWorkflow,
    ResumeWorkflow,
    StartWorkflow,
    StopTask,
    StopWorkflow,
)
from streams.core.definition import WorkflowDef, scope_problems
from streams.core.enums import Priority, TaskDependType, WorkflowState
from streams.core.errors import TideflowError
from streams.core.events import WorkflowDefinitionRegistered
from streams.core.params import param_problems
from streams.kafka.config import KafkaConfig
from streams.kafka.producer import Producer
from streams.postgres.connection import DbConfig, connect


class NotFound(TideflowError):
    """The workflow or instance a request names does not exist (in the read models)."""


class NotProjectedYet(TideflowError):
    """A write was accepted but the read models did not show it within the wait."""

    retryable = True


class InvalidParams(TideflowError):
    """A start's parameters break the rule in `streams.core.params` (they could run code on a
    worker); nothing was sent."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class InvalidStartNodes(TideflowError):
    """A start's start nodes are not tasks of the workflow, or its scope needs some; nothing
    was sent (a master refuses such a start too, INVALID_DAG)."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class Contended(TideflowError):
    """Other registrations of the same code kept taking the next version first."""

    retryable = True


REGISTER_TRIES = 5


@dataclass(frozen=True)
class Registered:
    code: str
    version: int
    created: bool  # False: the same content was already registered as `version`


# Instance controls, by action name (DolphinScheduler's PAUSE, STOP, RECOVER_SUSPENDED_PROCESS /
# START_FAILURE_TASK_PROCESS, REPEAT_RUNNING).
CONTROLS = {
    "pause": PauseWorkflow,
    "stop": StopWorkflow,
    "resume": ResumeWorkflow,
    "rerun": RerunWorkflow,
}
# Controls on one task of an instance (DolphinScheduler's task instance force-success, stop).
TASK_CONTROLS = {"force-success": ForceTaskSuccess, "stop": StopTask}


class Service:
    def __init__(self, kafka: KafkaConfig, db: DbConfig) -> None:
        self.kafka, self.topics, self.db_config = kafka, kafka.topics, db
        self._producer: Producer | None = None

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(self.kafka)
        return self._producer

    def close(self) -> None:
        """Flush and drop the producer (before the broker goes away: no reconnect noise)."""
        if self._producer is not None:
            self._producer.flush()
            self._producer = None

    @contextmanager
    def db(self) -> Iterator[psycopg.Connection[Any]]:
        conn = connect(self.db_config)
        try:
            yield conn
        finally:
            conn.close()

    # -- definitions -------------------------------------------------------------------------

    def register(self, workflow: WorkflowDef, by: str = "", wait_s: float = 60.0) -> Registered:
        """Append `WorkflowDefinitionRegistered` with the next version, unless the same
        content is already the latest version; waits until the read model shows it.

        Versions are claimed optimistically: the first registration of a version in the
        (single-partition) definitions log wins it. One that finds another content stored
        under the version it claimed tries the next version."""
        digest = workflow.content_hash()
        for _ in range(REGISTER_TRIES):
            with self.db() as conn:
                latest = queries.latest_definition(conn, workflow.code)
            if latest is not None and latest["content_hash"] == digest:
                return Registered(workflow.code, int(latest["version"]), created=False)
            version = 1 if latest is None else int(latest["version"]) + 1
            event = WorkflowDefinitionRegistered(
                workflow=replace(workflow, version=version),
                content_hash=digest,
                registered_by=by,
                at=datetime.now(UTC),
            )
            # The key names the content too: compaction keeps the winner and a loser of the
            # same version alike, so a replay still finds the winner first.
            key = f"{workflow.code}@{version}@{digest}"
            self.producer.send(self.topics.definitions, key, event)
            self.producer.flush()
            claimed = partial(queries.get_definition, code=workflow.code, version=version)
            stored = self._wait(claimed, wait_s)
            if stored["content_hash"] == digest:
                return Registered(workflow.code, version, created=True)
        raise Contended(
            f"workflow {workflow.code}: {REGISTER_TRIES} versions in a row were taken by other "
            "registrations; try again"
        )

    def definition(self, code: str, version: int | None = None) -> WorkflowDef:
        with self.db() as conn:
            row = (
                queries.latest_definition(conn, code)
                if version is None
                else queries.get_definition(conn, code, version)
            )
        if row is None:
            what = code if version is None else f"{code} version {version}"
            raise NotFound(f"no workflow definition {what}")
        return from_stored(row["definition"], int(row["version"]))

    def definitions(self) -> list[dict[str, Any]]:
        return self.definition_page(limit=10_000).rows

    def definition_page(self, limit: int = 100, cursor: str | None = None) -> Page:
        with self.db() as conn:
            return queries.definition_page(conn, limit, cursor)

    # -- commands ----------------------------------------------------------------------------

    def start(
        self,
        code: str,
        params: Mapping[str, str] | None = None,
        version: int | None = None,
        instance_id: str | None = None,
        command_id: str | None = None,
        by: str = "",
        dry_run: bool = False,
        start_nodes: Sequence[str] = (),
        scope: TaskDependType = TaskDependType.TASK_POST,
        priority: Priority = Priority.MEDIUM,
    ) -> dict[str, str]:
        """Send `StartWorkflow`; the instance id is returned before any master has run it.
        Passing the same `command_id` again is safe: it starts one instance. A dry run is
        orchestrated in full, but its workers report SUCCESS without running anything.
        With `start_nodes`, only they run (TASK_ONLY), with their upstream tasks (TASK_PRE)
        or with their downstream tasks (TASK_POST); without, the whole workflow. `priority`
        orders the instance among those waiting for worker slots.

        Raises:
            InvalidParams: a parameter's name or value could change how tasks run (checked
                here so the caller hears it at once; masters refuse such a start too).
            InvalidStartNodes: a start node is not a task of the workflow, or TASK_ONLY /
                TASK_PRE has none (checked here too; masters refuse it, INVALID_DAG).
            NotFound: no such workflow (version)."""
        problems = param_problems(params or {})
        if problems:
            raise InvalidParams(problems)
        workflow = self.definition(code, version)
        problems = scope_problems(workflow, tuple(start_nodes), scope)
        if problems:
            raise InvalidStartNodes(problems)
        instance_id = instance_id or str(uuid.uuid4())
        command = StartWorkflow(
            command_id=command_id or f"start/{instance_id}",
            instance_id=instance_id,
            workflow=workflow,
            params=dict(params or {}),
            requested_by=by,
            at=datetime.now(UTC),
            dry_run=dry_run,
            start_nodes=tuple(start_nodes),
            scope=scope,
            priority=priority,
        )
        self.send(command)
        return {"instance_id": instance_id, "command_id": command.command_id}

    def control(self, instance_id: str, action: str) -> dict[str, str]:
        if action not in CONTROLS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(CONTROLS)}")
        command_id = f"{action}/{instance_id}/{uuid.uuid4()}"
        self.send(
            CONTROLS[action](command_id=command_id, instance_id=instance_id, at=datetime.now(UTC))
        )
        return {"instance_id": instance_id, "command_id": command_id}

    def task_control(self, instance_id: str, task_code: str, action: str) -> dict[str, str]:
        """Send a control on one task (`TASK_CONTROLS`): force-success or stop. An unknown
        task, or one in the wrong state, ends as a `CommandRejected` on the instance."""
        if action not in TASK_CONTROLS:
            known = ", ".join(TASK_CONTROLS)
            raise ValueError(f"unknown task action {action!r}; expected one of {known}")
        command_id = f"{action}/{instance_id}/{task_code}/{uuid.uuid4()}"
        command = TASK_CONTROLS[action](
            command_id=command_id, instance_id=instance_id, task_code=task_code,
            at=datetime.now(UTC),
        )  # fmt: skip
        self.send(command)
        return {"instance_id": instance_id, "command_id": command_id}

    def execute_tasks(
        self,
        instance_id: str,
        start_nodes: Sequence[str],
        scope: TaskDependType = TaskDependType.TASK_POST,
    ) -> dict[str, str]:
        """Send `RerunTasks` (EXECUTE_TASK): the start nodes of a SUCCESS or FAILURE instance
        run again inside it, alone (TASK_ONLY), with their upstream (TASK_PRE) or downstream
        (TASK_POST) tasks. A wrong state or an unknown task ends as a `CommandRejected`."""
        command_id = f"execute-tasks/{instance_id}/{uuid.uuid4()}"
        command = RerunTasks(
            command_id=command_id, instance_id=instance_id, start_nodes=tuple(start_nodes),
            scope=scope, at=datetime.now(UTC),
        )  # fmt: skip
        self.send(command)
        return {"instance_id": instance_id, "command_id": command_id}

    def send(self, command: Any) -> None:
        self.producer.send(self.topics.commands, command.instance_id, command)
        self.producer.flush()

    # -- reads -------------------------------------------------------------------------------

    def instance(self, instance_id: str) -> dict[str, Any]:
        with self.db() as conn:
            found = queries.get_instance(conn, instance_id)
            gone = None if found is not None else retired(conn, instance_id)
        if gone is not None:
            raise NotFound(
                f"workflow instance {instance_id} ({gone['state']}, ended {gone['ended_at']}) was"
                f" retired from the read models on {gone['retired_at']}; the log keeps it:"
                " `tideflow history ID --at` folds it, `tideflow replay` brings it back"
            )
        if found is None:
            raise NotFound(f"no workflow instance {instance_id}")
        return found

    def instances(
        self, workflow_code: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        return self.instance_page(workflow_code=workflow_code, state=state, limit=limit).rows

    def instance_page(
        self,
        *,
        workflow_code: str | None = None,
        state: str | None = None,
        requested_by: str | None = None,
        worker_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        with self.db() as conn:
            return queries.instance_page(
                conn, workflow_code, state, requested_by, worker_id, since, until, limit, cursor
            )

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        with self.db() as conn:
            return queries.history(conn, instance_id)

    def history_page(self, instance_id: str, limit: int = 1000, cursor: str | None = None) -> Page:
        with self.db() as conn:
            return queries.history_page(conn, instance_id, limit, cursor)

    def rejections(
        self, instance_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page:
        with self.db() as conn:
            return queries.rejection_page(conn, instance_id, limit, cursor)

    def stats(
        self,
        workflow_code: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[str, Any]:
        with self.db() as conn:
            return projection_stats(conn, workflow_code, since, until)

    def instance_at(self, instance_id: str, point: Point) -> dict[str, Any]:
        """The instance as it was at `point`, folded from the events log (time travel)."""
        found = instance_at(self.kafka, self.topics.events, instance_id, point)
        if found is None:
            raise NotFound(f"no workflow instance {instance_id} at {point_text(point)}")
        return found

    def workers(self) -> list[dict[str, Any]]:
        return self.worker_page(limit=10_000).rows

    def worker_page(self, limit: int = 100, cursor: str | None = None) -> Page:
        with self.db() as conn:
            return queries.worker_page(conn, limit, cursor)

    def wait_for_instance(
        self, instance_id: str, timeout_s: float = 600.0
    ) -> Iterator[dict[str, Any]]:
        """The instance's row each time it is polled, until it is finished."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.db() as conn:
                found = queries.get_instance(conn, instance_id)
            if found is not None:
                yield found
                if WorkflowState(found["state_code"]).finished:
                    return
            time.sleep(0.2)
        raise NotProjectedYet(f"instance {instance_id} not finished within {timeout_s}s")

    def _wait(self, probe: Any, wait_s: float) -> Any:
        deadline = time.monotonic() + wait_s
        while True:
            with self.db() as conn:
                found = probe(conn)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise NotProjectedYet("accepted, but not yet visible in the read models")
            time.sleep(0.1)
