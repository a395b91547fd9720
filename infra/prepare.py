"""Making a broker and a database ready for tideflow: topics provisioned, read models migrated."""

from __future__ import annotations

import threading

from infra.settings import Settings
from infra.topics import provision
from projections.migrate import migrate
from streams.postgres.connection import connect_with_retry


def migrate_read_models(settings: Settings, stop: threading.Event | None = None) -> None:
    """Create or upgrade the read models, waiting (with backoff) for PostgreSQL to answer."""
    conn = connect_with_retry(settings.db, stop=stop)
    try:
        migrate(conn, settings.tideflow_db_schema)
    finally:
        conn.close()


def prepare(settings: Settings) -> None:
    provision(settings)
    migrate_read_models(settings)
