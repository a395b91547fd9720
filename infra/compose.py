"""The composition root: every role built from the settings, in one place.

The CLI, the local fleet, the bench, chaos and the tests build roles here or through the
roles' public constructors with typed configuration; nothing below `infra` reads the
environment or knows how the others are built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from confluent_kafka import Consumer
from fastapi import FastAPI

from api.http import create_app
from api.service import Service
from infra.settings import Settings
from projections.projector import Projector
from streams.core.decide import decide as core_decide
from streams.core.tick import tick as core_tick
from streams.kafka.process import utcnow
from streams.kafka.producer import Producer
from streams.master.decisions import Decider, Ticker
from streams.master.registry import WorkerRegistry
from streams.master.runtime import Master
from streams.master.snapshot_cadence import Snapshots
from streams.master.snapshots import SnapshotStore
from streams.scheduler.definitions import Definitions
from streams.scheduler.instance_ends import InstanceEnds
from streams.scheduler.runtime import Scheduler
from streams.worker.worker import Worker

log = logging.getLogger("tideflow.compose")


def snapshot_store(settings: Settings) -> SnapshotStore | None:
    """The master's snapshot store; None (every takeover replays the log) without a database."""
    if not settings.database_url:
        log.warning("snapshots off: DATABASE_URL is not set; takeovers replay the log")
        return None
    return SnapshotStore(settings.db, settings.topics.events)


def master(
    settings: Settings,
    *,
    snapshots: Snapshots | Literal["settings"] | None = "settings",
    clock: Callable[[], datetime] = utcnow,
    decide: Decider = core_decide,
    tick: Ticker = core_tick,
) -> Master:
    """A master and its parts: a group consumer of the commands topic, a held producer (one
    burst per step), the worker registry reading heartbeats, and the snapshot store
    (`snapshots`: by default `snapshot_store(settings)`; None replays every takeover).
    `decide` and `tick` are the core's unless a test injects others."""
    cfg = settings.master
    kafka = cfg.kafka
    return Master(
        cfg,
        consumer=Consumer(kafka.consumer_config("master", f"{kafka.topics.prefix}master")),
        producer=Producer(kafka, held=True),
        registry=WorkerRegistry(cfg, clock),
        snapshots=snapshot_store(settings) if snapshots == "settings" else snapshots,
        clock=clock,
        decide=decide,
        tick=tick,
    )


def scheduler(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Scheduler:
    """A scheduler: a group consumer of the schedule-commands topic (its own group), a
    producer, and readers of the definitions topic and of the events topic (instance ends,
    for backfills)."""
    cfg = settings.scheduler
    kafka = cfg.kafka
    return Scheduler(
        cfg,
        consumer=Consumer(kafka.consumer_config("scheduler", f"{kafka.topics.prefix}scheduler")),
        producer=Producer(kafka),
        definitions=Definitions(kafka),
        instance_ends=InstanceEnds(kafka),
        clock=clock,
    )


def worker(settings: Settings) -> Worker:
    return Worker(settings.worker)


def projector(settings: Settings, consumer_name: str = "projector") -> Projector:
    return Projector(settings.kafka, settings.db, consumer_name)


def service(settings: Settings) -> Service:
    return Service(settings.kafka, settings.db)


def http_app(settings: Settings) -> FastAPI:
    return create_app(service(settings))
