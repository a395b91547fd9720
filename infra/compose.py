"""The composition root: every role built from the settings, in one place.

The CLI, the local fleet, the bench, chaos and the tests build roles here or through the
roles' public constructors with typed configuration; nothing below `infra` reads the
environment or knows how the others are built.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from api.http import create_app
from api.service import Service
from infra.settings import Settings
from projections.projector import Projector
from streams.master.runtime import Master
from streams.master.snapshots import SnapshotStore
from streams.worker.worker import Worker

log = logging.getLogger("tideflow.compose")


def snapshot_store(settings: Settings) -> SnapshotStore | None:
    """The master's snapshot store; None (every takeover replays the log) without a database."""
    if not settings.database_url:
        log.warning("snapshots off: DATABASE_URL is not set; takeovers replay the log")
        return None
    return SnapshotStore(settings.db, settings.topics.events)


def master(settings: Settings) -> Master:
    return Master(settings.master, snapshots=snapshot_store(settings))


def worker(settings: Settings) -> Worker:
    return Worker(settings.worker)


def projector(settings: Settings, consumer_name: str = "projector") -> Projector:
    return Projector(settings.kafka, settings.db, consumer_name)


def service(settings: Settings) -> Service:
    return Service(settings.kafka, settings.db)


def http_app(settings: Settings) -> FastAPI:
    return create_app(service(settings))
