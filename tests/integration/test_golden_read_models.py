"""Each golden instance log, applied by the projector's batch path to a fresh schema of the
real PostgreSQL, reads back through the contract views as recorded in
tests/golden/read_models (`python -m tests.golden.record --read-models` records them)."""

from __future__ import annotations

import json
import uuid

import pytest

from infra.settings import Settings
from tests.golden.compare import renders
from tests.golden.read_models import fresh_schema, log_events, path_of, project
from tests.golden.record import LOGS
from tests.golden.scenarios import SCENARIOS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_golden_log_folds_to_its_recorded_read_models(stack: Settings, name: str) -> None:
    recorded = json.loads(path_of(name).read_text())
    events = log_events(json.loads((LOGS / f"{name}.json").read_text()))

    with fresh_schema(stack.db, f"golden_{uuid.uuid4().hex[:10]}") as conn:
        projected = project(conn, events)
        again = project(conn, events)  # redelivered: the projector's checkpoint skips it

    assert projected == again
    for view, rows in recorded.items():
        assert len(projected[view]) == len(rows), view
        for was, now in zip(rows, projected[view], strict=True):
            assert renders(was, now), f"{name} {view}: recorded {was}, projected {now}"
