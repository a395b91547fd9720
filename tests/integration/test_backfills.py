"""Backfills on the real stack (master, scheduler, worker, projector): a serial backfill of 3
dates and a parallel one (parallelism 2) of 4, each instance's schedule_time its date, one
instance per date even when the request is sent twice; refusals and progress through the
HTTP API and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.backfills import BackfillOps
from api.cli import app as cli_app
from api.http import create_app
from infra import compose
from infra.processes import Fleet
from infra.settings import Settings
from projections.replay import compare, replay
from streams.core.schedules.backfill import date_instance_id, parse_backfill
from streams.core.schedules.backfill_messages import RequestBackfill
from tests.integration.helpers import wait_projector_running, wait_until, workflow

pytestmark = pytest.mark.integration

D1 = datetime(2026, 11, 1, tzinfo=UTC)


def test_serial_and_parallel_backfills_start_one_instance_per_date(
    deployment: Settings, tmp_path: Path
) -> None:
    settings = deployment
    with Fleet(settings, log_dir=tmp_path / "logs") as fleet:
        for role in ("master", "projector", "scheduler", "worker"):
            fleet.start(role)
        wait_projector_running(settings)
        service = compose.service(settings)
        service.register(workflow("bf", [{"code": "a", "type": "noop"}]))
        http = TestClient(create_app(service))
        ops = BackfillOps(service)

        bad = http.post(
            "/backfills",
            json={
                "workflow_code": "bf",
                "start_date": "2026-11-03",
                "end_date": "2026-11-01",
                "parallelism": 0,
            },
        )
        assert bad.status_code == 422, bad.text
        problems = "\n".join(bad.json()["problems"])
        assert "end_date: expected at or after start_date" in problems
        assert "parallelism: expected 1 or more, found 0" in problems
        too_many = [(D1 + timedelta(days=i)).isoformat() for i in range(101)]
        bad = http.post("/backfills", json={"workflow_code": "bf", "dates": too_many})
        assert bad.status_code == 422 and "at most 100 dates, found 101" in bad.text
        assert (
            http.post(
                "/backfills", json={"workflow_code": "no", "dates": ["2026-11-01"]}
            ).status_code
            == 404
        )

        # serial, 3 dates ascending (a range: daily at 00:00, no schedule), the request twice
        spec = parse_backfill(
            {
                "workflow_code": "bf",
                "start_date": "2026-11-01",
                "end_date": "2026-11-03",
                "order": "ASC",
            }
        )
        request = RequestBackfill(
            command_id="serial-req",
            backfill_id="serial",
            spec=spec,
            requested_by="test",
            at=datetime.now(UTC),
        )
        ops.send(request)
        ops.send(request)

        # parallel, 4 dates (a list), parallelism 2, through the API
        dates = [(D1 + timedelta(days=i)).isoformat() for i in range(4)]
        created = http.post(
            "/backfills?wait=20",
            json={
                "backfill_id": "parallel",
                "workflow_code": "bf",
                "dates": dates,
                "run_mode": "PARALLEL",
                "parallelism": 2,
                "params": {"who": "backfill"},
            },
        )
        assert created.status_code == 200, created.text
        parallel_req = created.json()["command_id"]

        def finished(backfill_id: str) -> dict[str, Any] | None:
            b: dict[str, Any] = http.get(f"/backfills/{backfill_id}").json()
            return b if b.get("state") == "SUCCESS" else None

        serial = wait_until(lambda: finished("serial"), 60, "the serial backfill to succeed")
        parallel = wait_until(lambda: finished("parallel"), 60, "the parallel backfill")
        assert [d["date"] for d in serial["dates"]] == [
            (D1 + timedelta(days=i)).isoformat() for i in range(3)
        ]
        assert serial["dates_succeeded"] == 3 and parallel["dates_succeeded"] == 4
        # serial: each date started after the previous one ended
        for before, after in zip(serial["dates"], serial["dates"][1:], strict=False):
            assert after["started_at"] >= before["ended_at"], serial["dates"]
        for b, req in ((serial, "serial-req"), (parallel, parallel_req)):
            for d in b["dates"]:
                date = datetime.fromisoformat(d["date"])
                assert d["instance_id"] == date_instance_id(req, date)
                assert d["state"] == d["instance_state"] == "SUCCESS"
                instance = http.get(f"/instances/{d['instance_id']}").json()
                assert instance["schedule_time"] == d["date"]
        with service.db() as conn:
            rows = conn.execute(
                "SELECT schedule_time, count(*) FROM workflow_instances"
                " WHERE workflow_code = 'bf' GROUP BY schedule_time"
            ).fetchall()
        # the serial request sent twice still made one instance per date
        counts = {at: n for at, n in rows}
        assert counts == {D1 + timedelta(days=i): 2 if i < 3 else 1 for i in range(4)}
        assert http.get(f"/instances/{parallel['dates'][0]['instance_id']}").json()["params"] == {
            "who": "backfill"
        }

        runner = CliRunner()

        def invoke(*args: str) -> tuple[int, str]:
            done = runner.invoke(cli_app, list(args), obj=lambda: service)
            return done.exit_code, " ".join(done.output.split())  # rich wraps long lines

        code, text = invoke("backfill", "status", "serial")
        assert code == 0 and "SUCCESS" in text and "3/3 started" in text, text
        code, text = invoke("backfill", "stop", "serial")
        assert code == 1 and "expected backfill serial RUNNING, found SUCCESS" in text, text
        code, text = invoke(
            "backfill", "create", "bf", "--start", "2026-11-02", "--end", "2026-11-01", "-n", "0"
        )
        assert code == 2 and "parallelism" in text, text

        # the backfill read models rebuild from the log as they are live
        fresh = f"{settings.tideflow_db_schema}_replay"
        replay(settings.kafka, settings.db, fresh)
        assert compare(settings.db, settings.tideflow_db_schema, fresh) == []
        service.close()


def test_a_serial_backfill_goes_on_after_the_scheduler_is_killed(
    deployment: Settings, tmp_path: Path
) -> None:
    """SIGKILL the scheduler while the first date runs; the end it misses is read again by
    the restarted one (from the events topic), which starts the next date: every date runs
    once, in order."""
    settings = deployment
    with Fleet(settings, log_dir=tmp_path / "logs") as fleet:
        for role in ("master", "projector", "scheduler", "worker"):
            fleet.start(role)
        wait_projector_running(settings)
        service = compose.service(settings)
        service.register(workflow("slow", [{"code": "a", "command": "sleep 1"}]))
        ops = BackfillOps(service)
        sent = ops.create(
            {
                "workflow_code": "slow",
                "start_date": "2026-11-01",
                "end_date": "2026-11-03",
                "order": "ASC",
            },
            "killed",
        )
        assert ops.outcome(sent["command_id"], 20) is not None

        def first_running() -> Any:
            b = ops.backfill("killed")
            return b["dates"][0]["state"] == "RUNNING"

        wait_until(first_running, 30, "the first date to start")
        fleet.kill("scheduler")
        wait_until(
            lambda: ops.backfill("killed")["dates"][0]["instance_state"] == "SUCCESS",
            30,
            "the first instance to end while no scheduler runs",
        )
        assert ops.backfill("killed")["dates"][1]["state"] == "WAITING"
        fleet.start("scheduler")
        done = wait_until(
            lambda: (b := ops.backfill("killed"))["state"] == "SUCCESS" and b,
            60,
            "the backfill to finish after the restart",
        )
        assert [d["state"] for d in done["dates"]] == ["SUCCESS"] * 3
        with service.db() as conn:
            (n,) = conn.execute(
                "SELECT count(*) FROM workflow_instances WHERE workflow_code = 'slow'"
            ).fetchone() or (0,)
        assert n == 3
        service.close()


def test_a_serial_chain_ends_at_a_failure_and_a_parallel_backfill_can_be_stopped(
    deployment: Settings, tmp_path: Path
) -> None:
    settings = deployment
    with Fleet(settings, log_dir=tmp_path / "logs") as fleet:
        for role in ("master", "projector", "scheduler", "worker"):
            fleet.start(role)
        wait_projector_running(settings)
        service = compose.service(settings)
        service.register(workflow("broken", [{"code": "a", "command": "false"}]))
        service.register(workflow("slow", [{"code": "a", "command": "sleep 2"}]))
        ops = BackfillOps(service)
        chain_sent = ops.create(
            {"workflow_code": "broken", "dates": ["2026-11-01", "2026-11-02"]}, "chain"
        )
        wide_sent = ops.create(
            {
                "workflow_code": "slow",
                "dates": [f"2026-11-0{d}" for d in range(1, 7)],
                "run_mode": "PARALLEL",
                "parallelism": 2,
            },
            "wide",
        )

        for sent in (chain_sent, wide_sent):
            decided = ops.outcome(sent["command_id"], 20)
            assert decided is not None and decided["accepted"], decided
        chain = wait_until(
            lambda: (b := ops.backfill("chain"))["state"] == "FAILURE" and b,
            60,
            "the serial chain to fail",
        )
        # DESC by default: the later date ran, failed, and the earlier one never started
        assert [(d["date"][:10], d["state"]) for d in chain["dates"]] == [
            ("2026-11-02", "FAILURE"),
            ("2026-11-01", "WAITING"),
        ]

        wait_until(lambda: ops.backfill("wide")["dates_started"] == 2, 30, "two dates started")
        stop = ops.stop("wide")
        outcome = ops.outcome(stop["command_id"], 20)
        assert outcome is not None and outcome["accepted"], outcome

        def settled() -> Any:
            b = ops.backfill("wide")
            return b if b["state"] == "STOP" and b["dates_succeeded"] == 2 else None

        wide = wait_until(settled, 60, "the stopped backfill's running instances to end")
        assert [d["state"] for d in wide["dates"]].count("WAITING") == 4
        service.close()
