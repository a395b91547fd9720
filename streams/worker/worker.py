"""The worker: reads its dispatch partition, runs attempts within its slots, acks them.

It owns the worker's Kafka edge and its slot accounting; running a process is `runner.py`'s
job, and no decision about retries or outcomes beyond one attempt is made here.

* Input: the dispatch partition its worker id hashes to (`partition_for`, the producer's
  murmur2), read with `assign()` (no group join, so it starts at once) under its own group id
  so its position is committed; records keyed for other workers are skipped undecoded.
  Offsets are committed once the records are handed to the executor, at most every
  COMMIT_EVERY_S (a commit is a broker request). An attempt lost with a crashed worker is
  the master's to fail over, never re-run by a new process: one restarted under the same id
  skips assignments made before it started, which are exactly those the master fails over.
* Output: `ReportTaskStarted` then `ReportTaskFinished` on the commands topic keyed by
  instance id, with derived command ids so a re-sent ack is the same command. Acks,
  refusals, heartbeats and dead letters all go through one `Outbox`: callers only enqueue, and
  its thread delivers everything queued with one flush, so executor threads never wait on the
  broker and heartbeats never wait behind acks one round trip each. One FIFO queue keeps a
  started ack ahead of its finished ack. An attempt leaves the slot accounting when it has
  run, whether or not its finished ack is delivered yet; an ack the outbox gives up on leaves
  the attempt to the master's acknowledgement timeout and worker failover, as a crash would.
  Dead letters are delivered before the offsets of their batch are committed. Heartbeats
  every `heartbeat_interval_s`, the first one at start; `slots_free` is slots minus
  attempts queued or running, negative when more are queued than there are slots.
* Duplicate assignments of an attempt seen by this process are ignored. A kill of an attempt
  that has not started (queued, or unknown here) reports KILLED without running it.
* Graceful stop (SIGTERM/SIGINT): heartbeats say `slots_total` 0 from then on so masters
  stop placing work here; queued attempts, and assignments still arriving, are reported FAILURE
  without running (the master's retry policy decides; there is no "rejected" ack yet); running
  attempts get `grace_s` to finish, while kills are still honoured, then are killed and
  reported FAILURE (the worker's fault, not a kill request). Then a synchronous commit, the
  consumer closes, a last heartbeat, and the outbox delivers everything still queued.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psutil
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from schemas.catalog import DISPATCH
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.core.commands import ReportTaskFinished, ReportTaskStarted
from streams.core.enums import Outcome
from streams.core.errors import TideflowError
from streams.core.worker_messages import KillTask, TaskAssignment, WorkerHeartbeat
from streams.kafka.batching import consume_batch
from streams.kafka.deadletter import dead_letter
from streams.kafka.partitioning import partition_for
from streams.kafka.process import CommitThrottle, utcnow
from streams.kafka.producer import Producer
from streams.worker import acks
from streams.worker.admission import Admission, Key, key_of
from streams.worker.config import WorkerConfig
from streams.worker.outbox import Outbox, OutboxClosed
from streams.worker.result import NOT_STARTED, Result
from streams.worker.runner import KILL_GRACE_S, Attempt

log = logging.getLogger("tideflow.worker")

GRACE_S = 8.0  # running attempts' time to finish on stop; + KILL_GRACE_S < Fleet's 15 s
COMMIT_EVERY_S = 0.2


def tideflow_version() -> str:
    try:
        return importlib.metadata.version("tideflow")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


@dataclass
class _Job:
    attempt: Attempt
    future: Future[None] | None = None
    shutdown_kill: bool = False


class Worker:
    def __init__(
        self,
        config: WorkerConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        grace_s: float = GRACE_S,
        batch_size: int = 500,
    ) -> None:
        self.worker_id = config.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self._config = config
        self._topics = config.kafka.topics
        self._clock = clock
        self._grace_s = grace_s
        self._batch_size = batch_size
        self._slots = config.slots
        self._started_at = clock()
        self._version = tideflow_version()
        self._key = self.worker_id.encode()
        # linger 0: the outbox batches by itself (whatever queued during the last flush).
        no_linger: dict[str, Any] = {"linger.ms": 0}
        self._outbox = Outbox(Producer(config.kafka, **no_linger))
        self._lock = threading.Lock()  # guards _jobs and _admission
        self._jobs: dict[Key, _Job] = {}
        self._draining = False
        self._next_heartbeat = 0.0
        self._commits = CommitThrottle(COMMIT_EVERY_S)
        self._executor = ThreadPoolExecutor(self._slots, thread_name_prefix="task")
        psutil.cpu_percent(interval=None)  # the first non-blocking reading is meaningless
        group = f"{self._topics.prefix}worker-{self.worker_id}"
        self._consumer = Consumer(config.kafka.consumer_config("worker", group))
        self.partition = partition_for(self.worker_id, self._partitions(self._topics.dispatch))
        # Instance partitions, for fencing: the commands topic's, as the master reads them.
        self._admission = Admission(self._started_at, self._partitions(self._topics.commands))
        # No offset given: the group's committed one, else auto.offset.reset (earliest).
        self._consumer.assign([TopicPartition(self._topics.dispatch, self.partition)])
        log.info("worker %s reads %s[%d]", self.worker_id, self._topics.dispatch, self.partition)

    def _partitions(self, topic: str, timeout_s: float = 30.0) -> int:
        deadline = time.monotonic() + timeout_s
        while True:
            found = self._consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
            if found is not None and found.error is None and found.partitions:
                return len(found.partitions)
            if time.monotonic() >= deadline:
                raise TideflowError(f"topic {topic} not found: provision the topics first")
            time.sleep(0.5)

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set, then stop gracefully (see the module docstring)."""
        try:
            self.heartbeat()
            while not stop.is_set():
                self.step()
            self._drain()
        finally:
            self.close()

    def step(self, timeout: float = 0.1) -> int:
        """Take in one batch of dispatch records and commit it; heartbeat when due."""
        batch = consume_batch(self._consumer, self._batch_size + 1, timeout)
        dead_lettered = False
        for msg in batch:
            dead_lettered |= self._handle(msg)
        if dead_lettered and not self._outbox.wait():  # before their offsets move
            log.error("dead letters not delivered; their offsets are committed all the same")
        self._commits.consumed(len(batch))
        if self._commits.due():
            try:
                self._consumer.commit(asynchronous=True)
            except KafkaException as exc:
                log.warning("commit failed (%s); records may be read again", exc)
        if time.monotonic() >= self._next_heartbeat:
            self.heartbeat()
        return len(batch)

    def _drain(self) -> None:
        self._draining = True
        self.heartbeat()
        with self._lock:
            queued = [(k, j) for k, j in self._jobs.items() if j.future and j.future.cancel()]
            for key, _ in queued:
                del self._jobs[key]
        for _, job in queued:
            self._refuse(job.attempt.assignment, "stopped before this attempt started")
        deadline = time.monotonic() + self._grace_s
        while self.busy() and time.monotonic() < deadline:
            self.step(0.05)  # kills are still honoured; new assignments are refused
        with self._lock:
            for job in self._jobs.values():
                job.shutdown_kill = True
                job.attempt.kill(Outcome.FAILURE)
        deadline = time.monotonic() + KILL_GRACE_S + 1.0
        while self.busy() and time.monotonic() < deadline:
            self.step(0.05)

    def close(self) -> None:
        self._draining = True
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:  # nothing consumed yet, or the broker is gone
            log.debug("final commit: %s", exc)
        self._consumer.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.heartbeat()
        self._outbox.close()  # everything enqueued, the last heartbeat included, delivered

    def busy(self) -> int:
        """Attempts queued or running."""
        with self._lock:
            return len(self._jobs)

    # -- per record --------------------------------------------------------------------------

    def _handle(self, msg: Message) -> bool:
        """Act on one dispatch record; True when it was dead-lettered."""
        if msg.error():
            log.warning("consume error: %s", msg.error())
            return False
        if msg.key() != self._key:
            return False  # another worker's partition mate
        try:
            record: TaskAssignment | KillTask = expect(msg.value(), DISPATCH)
        except DecodeError as exc:
            dead_letter(self._outbox, self._topics.dead_letter, msg, str(exc))
            return True
        if record.worker_id != self.worker_id:
            log.warning("record keyed %s is addressed to %s; ignored", self.worker_id, record)
        elif self._fenced(record):
            log.warning("record from a master that lost its partition ignored: %s", record)
        elif isinstance(record, TaskAssignment):
            self._accept(record)
        else:
            self._kill(record)
        return False

    def _fenced(self, record: TaskAssignment | KillTask) -> bool:
        with self._lock:
            return self._admission.fenced(record)

    def _accept(self, a: TaskAssignment) -> None:
        key = key_of(a)
        with self._lock:
            if self._admission.seen(key):
                log.info("duplicate assignment %s ignored", key)
                return
            self._admission.remember(key)
            if self._admission.before_start(a):
                log.info("assignment %s was made before this process started; skipped", key)
                return
            if not self._draining:
                job = _Job(Attempt(a, resources=self._config.resources))
                self._jobs[key] = job
                job.future = self._executor.submit(self._execute, key, job)
                return
        self._refuse(a, "is stopping; attempt not started")

    def _kill(self, k: KillTask) -> None:
        key = key_of(k)
        with self._lock:
            job = self._jobs.get(key)
            if job is None and self._admission.seen(key):
                return  # already finished here; its finished ack is on its way or delivered
            self._admission.remember(key)
            if job is not None and not (job.future and job.future.cancel()):
                job.attempt.kill()  # running: its thread reports the outcome
                return
            self._jobs.pop(key, None)
        self._ack(self._finished(k, Result(Outcome.KILLED, NOT_STARTED, "killed before start")))

    def _refuse(self, a: TaskAssignment, why: str) -> None:
        result = Result(Outcome.FAILURE, NOT_STARTED, f"worker {self.worker_id} {why}")
        self._ack(self._finished(a, result))

    def _execute(self, key: Key, job: _Job) -> None:
        """One attempt, on an executor thread: started ack, run, finished ack (enqueued; the
        slot is free once the attempt has run, not once its ack is delivered)."""
        a = job.attempt.assignment
        try:
            if not job.attempt.kill_requested:
                self._ack(self._started(a))
            result = job.attempt.run()
            if job.shutdown_kill:
                note = f"\n[tideflow] killed: worker {self.worker_id} stopped"
                result = Result(result.outcome, result.exit_code, result.output + note)
            self._ack(self._finished(a, result))
        except Exception:  # a bug here must not silently eat the slot's thread
            log.exception("attempt %s crashed in the worker", key)
        finally:
            with self._lock:
                self._jobs.pop(key, None)

    # -- output ------------------------------------------------------------------------------

    def _started(self, a: TaskAssignment) -> ReportTaskStarted:
        return acks.started(a, self.worker_id, self._clock())

    def _finished(self, a: TaskAssignment | KillTask, r: Result) -> ReportTaskFinished:
        return acks.finished(a, r, self.worker_id, self._clock())

    def _ack(self, ack: ReportTaskStarted | ReportTaskFinished) -> None:
        """Enqueue an ack keyed by instance id; the outbox delivers it (and re-sends on a
        failed delivery: the command id makes a duplicate harmless)."""
        self._send(self._topics.commands, ack.instance_id, ack)

    def _send(self, topic: str, key: str, record: Any) -> None:
        try:
            self._outbox.send(topic, key, record)
        except OutboxClosed:  # an attempt that outlived close(): the master fails it over
            log.warning("worker closed; %s not sent", record)

    def heartbeat(self) -> WorkerHeartbeat:
        """Publish this worker's liveness and load now."""
        # A stopping worker offers no slots at all, so no master places anything here, even
        # as its own attempts there end.
        offered = 0 if self._draining else self._slots
        hb = WorkerHeartbeat(
            worker_id=self.worker_id,
            worker_group=self._config.group,
            host=socket.gethostname(),
            pid=os.getpid(),
            slots_total=offered,
            slots_free=offered - self.busy(),  # negative: attempts queued beyond the slots
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_percent=psutil.virtual_memory().percent,
            load_average=os.getloadavg()[0],
            version=self._version,
            started_at=self._started_at,
            at=self._clock(),
            weight=self._config.weight,
        )
        self._next_heartbeat = time.monotonic() + self._config.heartbeat_interval_s
        self._send(self._topics.heartbeats, self.worker_id, hb)
        return hb
