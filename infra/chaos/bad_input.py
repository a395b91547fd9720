"""Bad input mixed into the chaos load: each record must end in the dead-letter topic or as a
`CommandRejected` event, and nothing else may stop.

Kinds (seeded choice, weights in `KINDS`):

* ``garbage-command``: random bytes on the commands topic (not Avro single-object encoding);
* ``unknown-fingerprint-command``: marker C3 01, 8 random fingerprint bytes, a random body;
* ``truncated-command``: a real `StartWorkflow` cut short (a known schema, a broken body);
* ``unknown-instance-command``: pause / stop / resume / a started ack for an instance that
  does not exist (-> CommandRejected NOT_FOUND);
* ``unknown-attempt-ack``: `ReportTaskFinished` for attempt 1000+ of a real instance's first
  task (-> STALE_ATTEMPT, or NOT_FOUND if that task was not dispatched yet);
* ``unknown-task-ack``: `ReportTaskStarted` for a task the instance does not have (NOT_FOUND);
* ``garbage-dispatch``: random bytes on the dispatch topic keyed by a real worker id (the
  worker dead-letters it);
* ``garbage-event``: random bytes on the events topic (the projector dead-letters it; a
  master rebuilding the partition skips it).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from infra.chaos.records import BadInput
from infra.settings import Settings
from schemas.serde import encode
from streams.core.commands import (
    Command,
    PauseWorkflow,
    ReportTaskFinished,
    ReportTaskStarted,
    ResumeWorkflow,
    StartWorkflow,
    StopWorkflow,
)
from streams.core.definition import WorkflowDef
from streams.core.enums import Outcome
from streams.core.ids import ack_command_id
from streams.kafka.errors import DeliveryFailed
from streams.kafka.producer import Producer

KINDS: dict[str, int] = {
    "garbage-command": 2,
    "unknown-fingerprint-command": 2,
    "truncated-command": 1,
    "unknown-instance-command": 2,
    "unknown-attempt-ack": 2,
    "unknown-task-ack": 1,
    "garbage-dispatch": 1,
    "garbage-event": 1,
}
NOT_FOUND = frozenset({"NOT_FOUND"})


@dataclass
class BadInputs:
    settings: Settings
    rng: random.Random
    rate: float  # records per second (Poisson)
    started: Callable[[], Sequence[str]]  # instances started so far
    workflow_of: Mapping[str, str]  # instance -> workflow code
    definitions: Mapping[str, WorkflowDef]
    worker_ids: Sequence[str]
    seed: int = 0
    sent: list[BadInput] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _n: int = 0

    def run(self, stop: threading.Event) -> None:
        producer = Producer(self.settings.kafka)
        kinds, weights = list(KINDS), list(KINDS.values())
        next_at = time.monotonic() + self.rng.expovariate(self.rate)
        while not stop.is_set():
            if time.monotonic() >= next_at:
                self.send(producer, self.rng.choices(kinds, weights)[0])
                next_at += self.rng.expovariate(self.rate)
            stop.wait(max(0.0, min(0.1, next_at - time.monotonic())))

    def _garbage(self) -> bytes:
        """Random bytes that are not single-object encoding, unique per record."""
        self._n += 1
        body = self.rng.randbytes(self.rng.randint(4, 48))
        return bytes([self.rng.choice([0x00, 0x7B, 0xFF, 0x42])]) + body + self._n.to_bytes(4)

    def send(self, producer: Producer, kind: str) -> BadInput | None:
        t = self.settings.topics
        key: bytes | None = f"chaos-bad-{self.seed}-{self._n}".encode()
        partition: int | None = None
        item: BadInput | None
        if kind == "garbage-command":
            item = BadInput(kind, t.commands, self._garbage())
        elif kind == "unknown-fingerprint-command":
            value = b"\xc3\x01" + self.rng.randbytes(8) + self._garbage()
            item = BadInput(kind, t.commands, value)
        elif kind == "truncated-command":
            whole = encode(self._ghost_start())
            item = BadInput(kind, t.commands, whole[: self.rng.randint(11, len(whole) // 2)])
        elif kind == "garbage-dispatch":
            worker = self.rng.choice(list(self.worker_ids))
            key = worker.encode()
            item = BadInput(kind, t.dispatch, self._garbage())
        elif kind == "garbage-event":
            key = b"chaos/garbage"
            partition = self.rng.randrange(self.settings.tideflow_partitions)
            item = BadInput(kind, t.events, self._garbage())
        else:
            built = self._command(kind)
            if built is None:
                return None
            command, reasons = built
            key = command.instance_id.encode()
            item = BadInput(kind, t.commands, encode(command), command.command_id, reasons)
        try:
            producer.send_raw(item.topic, key, item.value, partition=partition)
            producer.flush()
        except DeliveryFailed as exc:
            self.errors.append(f"{kind}: {exc}")
            return None
        self.sent.append(item)
        return item

    def _ghost_start(self) -> StartWorkflow:
        self._n += 1
        code = sorted(self.definitions)[0]
        iid = f"chaos-ghost-{self.seed}-{self._n}"
        return StartWorkflow(
            command_id=f"start/{iid}",
            instance_id=iid,
            workflow=self.definitions[code],
            at=datetime.now(UTC),
        )

    def _command(self, kind: str) -> tuple[Command, frozenset[str]] | None:
        self._n += 1
        n, now = self._n, datetime.now(UTC)
        cid = f"chaos-bad/{kind}/{self.seed}-{n}"
        if kind == "unknown-instance-command":
            ghost = f"chaos-ghost-{self.seed}-{n}"
            which = self.rng.choice(["pause", "stop", "resume", "started"])
            if which == "started":
                return ReportTaskStarted(
                    command_id=cid,
                    instance_id=ghost,
                    task_code="a",
                    attempt=1,
                    worker_id="worker-ghost",
                    at=now,
                ), NOT_FOUND
            controls: dict[str, type[PauseWorkflow | StopWorkflow | ResumeWorkflow]] = {
                "pause": PauseWorkflow,
                "stop": StopWorkflow,
                "resume": ResumeWorkflow,
            }
            return controls[which](command_id=cid, instance_id=ghost, at=now), NOT_FOUND
        started = self.started()
        if not started:
            return None
        iid = self.rng.choice(list(started))
        if kind == "unknown-task-ack":
            return ReportTaskStarted(
                command_id=cid,
                instance_id=iid,
                task_code="ghost-task",
                attempt=1,
                worker_id="worker-ghost",
                at=now,
            ), NOT_FOUND
        workflow = self.definitions[self.workflow_of[iid]]
        first = next(t.code for t in workflow.tasks if not t.depends)
        attempt = 1000 + n
        return ReportTaskFinished(
            command_id=ack_command_id(iid, first, attempt, "finished"),
            instance_id=iid,
            task_code=first,
            attempt=attempt,
            worker_id="worker-ghost",
            outcome=Outcome.SUCCESS,
            exit_code=0,
            at=now,
        ), frozenset({"STALE_ATTEMPT", "NOT_FOUND"})
