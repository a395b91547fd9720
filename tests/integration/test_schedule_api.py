"""Schedules through the HTTP API and the CLI on the real stack (master, scheduler, projector):
every problem of a bad schedule named (422 / exit 2), refusals read back with "expected X,
found Y" (409 / exit 1), fires visible in the read models with their lateness and instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.http import create_app
from infra import compose
from infra.processes import Fleet
from infra.settings import Settings
from streams.core.ids import scheduled_instance_id
from tests.integration.helpers import wait_projector_running, wait_until, workflow

pytestmark = pytest.mark.integration


def test_schedules_through_the_api_and_the_cli(deployment: Settings, tmp_path: Path) -> None:
    settings = deployment
    with Fleet(settings, log_dir=tmp_path / "logs") as fleet:
        for role in ("master", "projector", "scheduler", "worker"):
            fleet.start(role)
        wait_projector_running(settings)
        service = compose.service(settings)
        service.register(workflow("tick", [{"code": "a", "type": "noop"}]))
        http = TestClient(create_app(service))

        bad = http.post(
            "/schedules",
            json={"workflow_code": "tick", "cron": "0 0 25 * * *", "timezone": "Mars/Base",
                  "start_time": "2026-12-02T00:00Z", "end_time": "2026-12-01T00:00Z"},
        )  # fmt: skip
        assert bad.status_code == 422, bad.text
        problems = "\n".join(bad.json()["problems"])
        assert "timezone: expected an IANA name" in problems
        assert "'?' in exactly one of day-of-month and day-of-week" in problems
        unknown = http.post("/schedules", json={"workflow_code": "nope", "cron": "0 2 * * *"})
        assert unknown.status_code == 404

        body = {"schedule_id": "every-2s", "workflow_code": "tick", "cron": "*/2 * * * * ? *",
                "online": True, "params": {"day": "1"}}  # fmt: skip
        created = http.post("/schedules?wait=20", json=body)
        assert created.status_code == 200, created.text
        assert created.json()["outcome"]["accepted"] is True

        again = http.post("/schedules/every-2s/online?wait=20")
        assert again.status_code == 409, again.text
        assert again.json()["outcome"]["message"] == (
            "expected schedule every-2s OFFLINE, found ONLINE"
        )
        edit = http.patch("/schedules/every-2s?wait=20", json={"cron": "*/4 * * * * ? *"})
        assert edit.status_code == 409 and edit.json()["outcome"]["reason"] == "INVALID_STATE"

        def fired() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = http.get("/schedules/every-2s/fires").json()
            return rows if len(rows) >= 2 and all(r["state"] for r in rows) else []

        fires = wait_until(fired, 30, "two fires with their instances")
        for f in fires:
            assert f["instance_id"] == scheduled_instance_id("every-2s", _time(f["fire_time"])), f
            assert 0 <= f["lateness_s"] < 2.0, f
            instance = http.get(f"/instances/{f['instance_id']}").json()
            assert instance["schedule_time"] == f["fire_time"]  # DolphinScheduler's scheduleTime
            assert instance["params"] == {"day": "1"} and instance["requested_by"] == (
                "schedule/every-2s"
            )
        row = http.get("/schedules/every-2s").json()
        assert row["release_state"] == "ONLINE" and row["fires"] >= 2
        assert row["next_fire_time"] > row["last_fire_time"]

        runner = CliRunner()

        def invoke(*args: str) -> Any:
            done = runner.invoke(cli_app, list(args), obj=lambda: service)
            done.text = " ".join(done.output.split())  # rich wraps long lines
            return done

        done = invoke("schedule", "offline", "every-2s")
        assert done.exit_code == 0 and "offline every-2s: done" in done.text, done.output
        done = invoke("schedule", "update", "every-2s", "--cron", "0 0 3 * * ? *", "--tz",
                      "Europe/Berlin")  # fmt: skip
        assert done.exit_code == 0, done.output
        done = invoke("schedule", "offline", "every-2s")
        assert done.exit_code == 1, done.output
        assert "expected schedule every-2s ONLINE, found OFFLINE" in done.text
        done = invoke("schedule", "create", "x", "-w", "tick", "--cron", "0 0 2 * * *", "--tz",
                      "Nowhere/Land", "--end", "soon")  # fmt: skip
        assert done.exit_code == 2, done.output
        assert "end_time: expected an ISO 8601 time" in done.text
        assert "timezone: expected an IANA name" in done.text
        done = invoke("schedule", "delete", "every-2s")
        assert done.exit_code == 0, done.output
        done = invoke("schedule", "list")
        assert "every-2s" in done.text and "DELETED" in done.text, done.output
        assert http.get("/schedules/every-2s").json()["cron"] == "0 0 3 * * ? *"
        service.close()


def _time(iso: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(iso)
