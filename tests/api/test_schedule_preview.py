"""`tideflow schedule preview`: fire times of a cron in its timezone, and every problem of a
bad one named, without a broker or a database."""

from __future__ import annotations

from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def test_preview_prints_the_next_fire_times_in_the_schedules_timezone() -> None:
    done = runner.invoke(
        app,
        ["schedule", "preview", "0 0 2 ? * 2-6 *", "--tz", "Asia/Shanghai", "-n", "3",
         "--after", "2024-03-01T00:00:00"],
    )  # fmt: skip

    assert done.exit_code == 0, done.output
    assert done.output.split() == [
        "2024-03-01T02:00:00+08:00",  # a Friday (Quartz 6), in Shanghai's time
        "2024-03-04T02:00:00+08:00",
        "2024-03-05T02:00:00+08:00",
    ]


def test_preview_of_an_invalid_schedule_names_every_problem_and_exits_2() -> None:
    done = runner.invoke(app, ["schedule", "preview", "0 0 2 * * *", "--tz", "Mars/Base"])

    assert done.exit_code == 2
    assert "timezone: expected an IANA name" in done.output
    assert "'?' in exactly one of day-of-month and day-of-week" in done.output
