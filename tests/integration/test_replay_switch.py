"""Rebuild without downtime: a replay becomes the live read models in one rename while the
live projector runs; the projector carries on in the rebuilt schema (records written after
the switch appear there), and the previous models are kept under another name."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.processes import Fleet
from infra.settings import Settings
from projections import queries
from projections.replay import REPLAY_MARK, replay, switch
from streams.postgres.connection import connect
from tests.integration.helpers import wait_until
from tests.integration.test_projections import Log, produce, scenarios

pytestmark = pytest.mark.integration


def live_ids(settings: Settings) -> set[str]:
    with connect(settings.db) as conn:
        return {i["instance_id"] for i in queries.instance_page(conn, limit=1000).rows}


def test_a_replay_switches_in_and_the_live_projector_carries_on_in_it(
    deployment: Settings, fleet: Fleet, tmp_path: Path
) -> None:
    fleet.start("projector")
    logs = scenarios()
    produce(deployment, logs)
    wanted = {log.instance_id for log in logs}
    wait_until(lambda: wanted <= live_ids(deployment), timeout_s=60, what="projected")

    replay(deployment.kafka, deployment.db, "t_switch_next")
    previous = switch(deployment.kafka, deployment.db, "t_switch_next")

    assert wanted <= live_ids(deployment)  # readers see the whole rebuilt models at once
    later = Log("i-after-switch").started()
    produce(deployment, [later])
    wait_until(lambda: "i-after-switch" in live_ids(deployment), timeout_s=60,
               what="the projector writing into the switched-in schema")  # fmt: skip
    with connect(deployment.db) as conn:
        mark = conn.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
            (previous,),
        ).fetchone()
        assert mark == (REPLAY_MARK,)  # kept, and a later replay may reuse the name
        conn.execute(f'DROP SCHEMA "{previous}" CASCADE'.encode())
        conn.commit()
