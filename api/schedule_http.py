"""The schedule endpoints of the HTTP API (DolphinScheduler's `schedules`, `/{id}/online`,
`/{id}/offline`, `preview`). Thin: parse, call `ScheduleOps`, map errors.

Errors: a bad schedule is 422 naming every problem (`problems`); an unknown schedule or
workflow is 404. A write is 202 once sent; with `?wait=S` the answer waits up to S seconds for
the scheduler's decision: 200 with the outcome, 409 with the refusal ("expected OFFLINE,
found ONLINE"), or 202 if it was not decided in time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.conformance import errors, problem
from api.paging import Cursor, Limit, paged
from api.schedules import ACTIONS, ScheduleOps
from streams.core.cron import InvalidCron, parse_cron
from streams.core.schedules.spec import InvalidSchedule

MAX_WAIT_S = 30.0
_WRITE: dict[int | str, dict[str, Any]] = {
    200: {"description": "with ?wait: decided, with the outcome"},
    202: {"description": "sent; with ?wait: not decided in time"},
    409: {"description": "with ?wait: refused; `outcome` has the reason"},
}
Wait = Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="wait for the decision (s)")]


class ScheduleFields(BaseModel):
    """A schedule's definition; on PATCH only the fields given change."""

    workflow_code: str | None = Field(default=None, description="the workflow each fire starts")
    cron: str | None = Field(default=None, description="Quartz '0 0 2 * * ? *' or Unix '0 2 * * *'")
    timezone: str | None = Field(default=None, description="IANA name; default UTC")
    start_time: str | None = Field(default=None, description="ISO 8601; no offset: in timezone")
    end_time: str | None = Field(default=None, description="ISO 8601; no offset: in timezone")
    misfire: Literal["ALL", "LATEST"] | None = Field(
        default=None, description="after downtime: every missed time in the window, or the latest"
    )
    catch_up_window_s: float | str | None = Field(
        default=None, description="seconds, or '1h': older missed times are not fired"
    )
    failure_strategy: str | None = Field(default=None, description="CONTINUE (default) or END")
    workflow_priority: str | None = Field(default=None, description="HIGHEST ... LOWEST")
    worker_group: str | None = None
    warning_type: str | None = Field(default=None, description="NONE, SUCCESS, FAILURE, ALL")
    warning_group_id: int | None = None
    params: dict[str, str] | None = Field(default=None, description="startup parameters")


class CreateRequest(ScheduleFields):
    schedule_id: str | None = Field(default=None, description="choose the id; default a UUID")
    online: bool = Field(default=False, description="bring it online at once")


def _given(fields: ScheduleFields) -> dict[str, Any]:
    return {
        k: v
        for k, v in fields.model_dump(exclude_unset=True).items()
        if k not in ("schedule_id", "online") and v is not None
    }


def add_schedule_routes(app: FastAPI, ops: ScheduleOps) -> None:
    @app.exception_handler(InvalidSchedule)
    async def _invalid(_: Request, exc: InvalidSchedule) -> JSONResponse:
        return problem(422, "invalid schedule", exc.problems)

    def _answer(sent: dict[str, str], wait: float) -> Any:
        if wait <= 0:
            return JSONResponse(status_code=202, content=sent)
        outcome = ops.outcome(sent["command_id"], min(wait, MAX_WAIT_S))
        if outcome is None:
            return JSONResponse(status_code=202, content=sent)
        status = 200 if outcome["accepted"] else 409
        return JSONResponse(status_code=status, content={**sent, "outcome": outcome})

    @app.post("/schedules", status_code=202, responses=_WRITE | errors(400, 404, 413, 422))
    def create_schedule(body: CreateRequest, wait: Wait = 0.0) -> Any:
        """Create a schedule (OFFLINE unless `online`); 422 names every problem, 404 an
        unregistered workflow."""
        sent = ops.create(_given(body), body.schedule_id, online=body.online, by="api")
        return _answer(sent, wait)

    @app.get("/schedules", responses=errors(404, 422))
    def list_schedules(
        request: Request,
        response: Response,
        workflow: str | None = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        """Schedules by id (of one workflow when given)."""
        return paged(request, response, ops.schedules(workflow, limit, cursor))

    @app.get("/schedules/preview", responses=errors(422))
    def preview(
        cron: str, tz: str = "UTC", n: Annotated[int, Query(ge=1, le=1000)] = 5
    ) -> list[str]:
        """The next `n` fire times of `cron` in `tz` (nothing is registered)."""
        try:
            parsed = parse_cron(cron, tz)
        except InvalidCron as exc:
            raise InvalidSchedule(exc.problems) from exc
        return [t.isoformat() for t in parsed.fire_times(datetime.now(UTC), limit=n)]

    @app.get("/schedules/{schedule_id}", responses=errors(404, 422))
    def get_schedule(schedule_id: str) -> dict[str, Any]:
        return ops.schedule(schedule_id)

    @app.get("/schedules/{schedule_id}/fires", responses=errors(404, 422))
    def schedule_fires(
        request: Request,
        response: Response,
        schedule_id: str,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        """Fire history, newest first: fire time, when it fired, lateness, the instance."""
        return paged(request, response, ops.fires(schedule_id, limit, cursor))

    @app.patch(
        "/schedules/{schedule_id}", status_code=202, responses=_WRITE | errors(400, 404, 413, 422)
    )
    def update_schedule(
        schedule_id: str, body: Annotated[ScheduleFields, Body()], wait: Wait = 0.0
    ) -> Any:
        """Change an OFFLINE schedule (an online one is refused, as DolphinScheduler does)."""
        return _answer(ops.update(schedule_id, _given(body), by="api"), wait)

    @app.delete("/schedules/{schedule_id}", status_code=202, responses=_WRITE | errors(404, 422))
    def delete_schedule(schedule_id: str, wait: Wait = 0.0) -> Any:
        return _answer(ops.act(schedule_id, "delete"), wait)

    def _act(action: str) -> Any:
        def act(schedule_id: str, wait: Wait = 0.0) -> Any:
            return _answer(ops.act(schedule_id, action), wait)

        act.__name__ = f"schedule_{action}"
        return act

    # One path per action (not /{action}): a method a path does not take is a 405 there.
    for action in ("online", "offline"):
        assert action in ACTIONS
        app.add_api_route(
            f"/schedules/{{schedule_id}}/{action}",
            _act(action),
            methods=["POST"],
            status_code=202,
            responses=_WRITE | errors(404, 422),
            summary=f"Bring a schedule {action}",
        )
