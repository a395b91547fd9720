"""Making a broker and a database ready for tideflow: topics provisioned, read models migrated."""

from __future__ import annotations

from infra.settings import Settings
from infra.topics import provision


def prepare(settings: Settings) -> None:
    from projections.db import connect
    from projections.migrate import migrate

    provision(settings)
    with connect(settings) as conn:
        migrate(conn, settings.tideflow_db_schema)
