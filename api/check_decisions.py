"""`tideflow replay --check-decisions`: today's `decide` against every recorded history.

Reads the commands topic (the inputs) and the events topic (the decisions), folds each events
partition with the core's `PartitionLog` (so a fenced owner's events are left out, as every
reader leaves them out), and checks each instance with `streams.core.decision_check`. An
unreadable record is counted, not fatal: the dead-letter topic already holds it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.catalog import COMMANDS, EVENTS
from schemas.errors import DecodeError
from schemas.serde import expect
from streams.core.commands import Command
from streams.core.decision_check import Divergence, check_instance
from streams.core.events import InstanceEvent, PartitionTakenOver, WorkerLost
from streams.core.partition import PartitionLog
from streams.kafka.config import KafkaConfig
from streams.kafka.reader import read_to_end, read_until_quiet


@dataclass
class CheckReport:
    instances: int = 0
    events_read: int = 0
    unreadable: int = 0
    divergences: list[Divergence] = field(default_factory=list)


def _commands(kafka: KafkaConfig, report: CheckReport) -> dict[str, Command]:
    found: dict[str, Command] = {}
    # Until quiet, not to the watermark: an ack can share its offset with the one before it
    # on Tansu (`read_until_quiet`), and a missing command would read as a forged decision.
    for msg in read_until_quiet(kafka, kafka.topics.commands):
        try:
            command = expect(msg.value(), COMMANDS)
        except DecodeError:
            report.unreadable += 1
            continue
        found.setdefault(command.command_id, command)  # a redelivery is the same command
    return found


def check_log(kafka: KafkaConfig, only: Iterable[str] | None = None) -> CheckReport:
    """Every instance's history (or those in `only`) re-decided with today's code."""
    report = CheckReport()
    commands = _commands(kafka, report)
    wanted = set(only) if only is not None else None
    histories: dict[str, list[tuple[int, InstanceEvent]]] = defaultdict(list)
    logs: dict[int, PartitionLog] = {}
    for msg in read_to_end(kafka, kafka.topics.events):
        try:
            event = expect(msg.value(), EVENTS)
        except DecodeError:
            report.unreadable += 1
            continue
        part = logs.setdefault(msg.partition() or 0, PartitionLog(msg.partition() or 0))
        if isinstance(event, PartitionTakenOver | WorkerLost):
            part.fold(event)
            continue
        if wanted is not None and event.instance_id not in wanted:
            continue
        if part.fold(event):
            histories[event.instance_id].append((msg.offset() or 0, event))
    for instance_id, events in histories.items():
        report.instances += 1
        report.events_read += len(events)
        divergence = check_instance(instance_id, events, commands)
        if divergence is not None:
            report.divergences.append(divergence)
    return report
