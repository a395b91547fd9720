"""Statistics over the read models (DolphinScheduler's project overview, and more): instances
by state, by state per day, per workflow with failure rates, task durations and retries per
task, and time from fire time to start for scheduled runs. Computed by SQL over the rows of
the instances that started in [since, until): the indexes on started_at bound the scan to the
range (the read-model bench measures it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from projections.queries import Conn, fetch_all
from streams.core.enums import TaskState, WorkflowState

_FINISHED = f"({', '.join(str(s.value) for s in WorkflowState if s.finished)})"
_FAILED = WorkflowState.FAILURE.value
_SUCCEEDED = WorkflowState.SUCCESS.value
_TASK_FAILED = TaskState.FAILURE.value


def _range(
    workflow_code: str | None, since: datetime | None, until: datetime | None
) -> tuple[str, list[Any]]:
    where, params = ["true"], []
    for clause, value in (
        ("i.workflow_code = %s", workflow_code),
        ("i.started_at >= %s", since),
        ("i.started_at < %s", until),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    return " AND ".join(where), params


def stats(
    conn: Conn,
    workflow_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Every statistic for the instances of `workflow_code` (all when None) that started in
    [since, until); days are UTC dates."""
    where, params = _range(workflow_code, since, until)
    p = tuple(params)
    by_state = fetch_all(
        conn,
        f"SELECT i.state, i.state_code, count(*) AS instances FROM workflow_instances i"
        f" WHERE {where} GROUP BY i.state, i.state_code ORDER BY i.state_code",
        p,
    )
    by_day = fetch_all(
        conn,
        f"SELECT (i.started_at AT TIME ZONE 'UTC')::date::text AS day, i.state,"
        f" count(*) AS instances FROM workflow_instances i WHERE {where}"
        f" GROUP BY 1, i.state, i.state_code ORDER BY 1, i.state_code",
        p,
    )
    workflows = fetch_all(
        conn,
        f"SELECT i.workflow_code, count(*) AS instances,"
        f" count(*) FILTER (WHERE i.state_code IN {_FINISHED}) AS finished,"
        f" count(*) FILTER (WHERE i.state_code = {_SUCCEEDED}) AS succeeded,"
        f" count(*) FILTER (WHERE i.state_code = {_FAILED}) AS failed,"
        f" round((count(*) FILTER (WHERE i.state_code = {_FAILED}))::numeric"
        f"   / nullif(count(*) FILTER (WHERE i.state_code IN {_FINISHED}), 0), 4)::float8"
        f"   AS failure_rate,"
        f" percentile_cont(0.5) WITHIN GROUP (ORDER BY"
        f"   EXTRACT(EPOCH FROM i.ended_at - i.started_at)) AS duration_p50_s,"
        f" percentile_cont(0.95) WITHIN GROUP (ORDER BY"
        f"   EXTRACT(EPOCH FROM i.ended_at - i.started_at)) AS duration_p95_s"
        f" FROM workflow_instances i WHERE {where}"
        f" GROUP BY i.workflow_code ORDER BY i.workflow_code",
        p,
    )
    # Every attempt counts for retries and failures; durations are of attempts that ran.
    tasks = fetch_all(
        conn,
        f"SELECT i.workflow_code, t.task_code, count(*) AS attempts,"
        f" count(DISTINCT t.instance_id) AS instances,"
        f" count(*) FILTER (WHERE t.attempt > 1) AS retries,"
        f" count(*) FILTER (WHERE t.state_code = {_TASK_FAILED}) AS failed_attempts,"
        f" round((count(*) FILTER (WHERE t.attempt > 1))::numeric / count(*), 4)::float8"
        f"   AS retry_rate,"
        f" percentile_cont(0.5) WITHIN GROUP (ORDER BY"
        f"   EXTRACT(EPOCH FROM t.ended_at - t.started_at)) AS duration_p50_s,"
        f" percentile_cont(0.95) WITHIN GROUP (ORDER BY"
        f"   EXTRACT(EPOCH FROM t.ended_at - t.started_at)) AS duration_p95_s,"
        f" max(EXTRACT(EPOCH FROM t.ended_at - t.started_at))::float8 AS duration_max_s"
        f" FROM task_instances t JOIN workflow_instances i USING (instance_id)"
        f" WHERE {where} GROUP BY i.workflow_code, t.task_code"
        f" ORDER BY i.workflow_code, t.task_code",
        p,
    )
    # DolphinScheduler's scheduled runs: how long after its fire time each instance started.
    schedules = fetch_all(
        conn,
        f"SELECT i.workflow_code, count(*) AS scheduled_instances,"
        f" percentile_cont(0.5) WITHIN GROUP (ORDER BY"
        f"   EXTRACT(EPOCH FROM i.started_at - i.schedule_time)) AS fire_to_start_p50_s,"
        f" percentile_cont(0.95) WITHIN GROUP (ORDER BY"
        f"   EXTRACT(EPOCH FROM i.started_at - i.schedule_time)) AS fire_to_start_p95_s,"
        f" max(EXTRACT(EPOCH FROM i.started_at - i.schedule_time))::float8 AS fire_to_start_max_s"
        f" FROM workflow_instances i WHERE {where} AND i.schedule_time IS NOT NULL"
        f" GROUP BY i.workflow_code ORDER BY i.workflow_code",
        p,
    )
    return {
        "workflow": workflow_code,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "instances": sum(int(r["instances"]) for r in by_state),
        "by_state": {r["state"]: r["instances"] for r in by_state},
        "by_day": by_day,
        "workflows": workflows,
        "tasks": tasks,
        "schedules": schedules,
    }
