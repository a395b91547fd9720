"""The read-model bench section at a tiny scale: the projector projects every generated
event, the synthesized rows are there, and every query is timed (no figure is asserted
against a bound: figures are printed by the bench, never tested for speed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.bench.readmodels import measure_read_models, query_cases
from infra.settings import Settings
from projections import queries
from streams.postgres.connection import connect
from tests.integration.conftest import fresh_settings

pytestmark = pytest.mark.integration


def test_read_model_section_projects_synthesizes_and_times_every_query(stack: Settings) -> None:
    settings = fresh_settings(stack)
    notes: list[str] = []

    figures = measure_read_models(settings, projected=5, total=3_000, repeats=3, note=notes.append)

    projector = figures["projector"]
    assert projector["applied"] >= projector["events"] > 5 * 30  # 32 events per instance
    assert figures["synthesized"] == {
        "instances": 3_000, "attempts": 30_000, "seconds": figures["synthesized"]["seconds"]
    }  # fmt: skip
    assert set(figures["queries"]) == set(query_cases(3_000, datetime.now(UTC)))
    for name, timed in figures["queries"].items():
        assert 0 < timed["p50_ms"] <= timed["p95_ms"] <= timed["max_ms"], name
    with connect(settings.db) as conn:
        newest = queries.instance_page(conn, limit=1).rows[0]
        assert newest["instance_id"] == "rm-000000000"
        detail = queries.get_instance(conn, "rm-000000007")
        assert detail is not None and len(detail["attempts"]) == 10
    assert any(n.startswith("synthesizing") for n in notes)
