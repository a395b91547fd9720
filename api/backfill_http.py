"""The backfill endpoints of the HTTP API (DolphinScheduler's complement data, started from
`executors/start-process-instance` with `execType=COMPLEMENT_DATA`). Thin: parse, call
`BackfillOps`, map errors.

Errors: a bad request is 422 naming every problem (`problems`); an unregistered workflow or
an unknown backfill is 404. A write is 202 once sent; with `?wait=S` the answer waits up to S
seconds for the scheduler's decision: 200 with the outcome, 409 with the refusal ("expected
backfill b1 RUNNING, found SUCCESS"), or 202 if it was not decided in time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.backfills import BackfillOps
from api.conformance import errors, problem
from streams.core.schedules.backfill import MAX_DATE_LIST, InvalidBackfill

MAX_WAIT_S = 30.0
_WRITE: dict[int | str, dict[str, Any]] = {
    200: {"description": "with ?wait: decided, with the outcome"},
    202: {"description": "sent; with ?wait: not decided in time"},
    409: {"description": "with ?wait: refused; `outcome` has the reason"},
}
Wait = Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="wait for the decision (s)")]


class CronField(BaseModel):
    cron: str = Field(description="Quartz '0 0 2 * * ? *' or Unix '0 2 * * *'")
    timezone: str = Field(default="UTC", description="IANA name")


class BackfillRequestBody(BaseModel):
    """A range (start_date and end_date) or a list of dates; the run settings a start takes."""

    backfill_id: str | None = Field(default=None, description="choose the id; default a UUID")
    workflow_code: str = Field(description="the workflow each date runs")
    start_date: str | None = Field(default=None, description="ISO 8601, inclusive")
    end_date: str | None = Field(default=None, description="ISO 8601, inclusive")
    dates: list[str] | None = Field(
        default=None, description=f"ISO 8601 dates (de-duplicated, at most {MAX_DATE_LIST})"
    )
    crons: list[CronField] | None = Field(
        default=None, description="expand the range by these (default: the online schedules')"
    )
    timezone: str | None = Field(default=None, description="of dates without an offset; UTC")
    order: Literal["ASC", "DESC"] | None = Field(default=None, description="default DESC")
    run_mode: Literal["SERIAL", "PARALLEL"] | None = Field(
        default=None, description="default SERIAL"
    )
    parallelism: int | None = Field(default=None, description="PARALLEL: instances at once")
    failure_strategy: str | None = Field(default=None, description="CONTINUE (default) or END")
    workflow_priority: str | None = Field(default=None, description="HIGHEST ... LOWEST")
    worker_group: str | None = None
    warning_type: str | None = Field(default=None, description="NONE, SUCCESS, FAILURE, ALL")
    warning_group_id: int | None = None
    params: dict[str, str] | None = Field(default=None, description="startup parameters")


def add_backfill_routes(app: FastAPI, ops: BackfillOps) -> None:
    @app.exception_handler(InvalidBackfill)
    async def _invalid(_: Request, exc: InvalidBackfill) -> JSONResponse:
        return problem(422, "invalid backfill", exc.problems)

    def _answer(sent: dict[str, str], wait: float) -> Any:
        if wait <= 0:
            return JSONResponse(status_code=202, content=sent)
        outcome = ops.outcome(sent["command_id"], min(wait, MAX_WAIT_S))
        if outcome is None:
            return JSONResponse(status_code=202, content=sent)
        status = 200 if outcome["accepted"] else 409
        return JSONResponse(status_code=status, content={**sent, "outcome": outcome})

    @app.post("/backfills", status_code=202, responses=_WRITE | errors(400, 404, 413, 422))
    def create_backfill(body: BackfillRequestBody, wait: Wait = 0.0) -> Any:
        """Backfill a workflow over a range or a list of dates; 422 names every problem, 404
        an unregistered workflow."""
        raw = {
            k: v
            for k, v in body.model_dump(exclude_unset=True).items()
            if k != "backfill_id" and v is not None
        }
        return _answer(ops.create(raw, body.backfill_id, by="api"), wait)

    @app.get("/backfills/{backfill_id}", responses=errors(404, 422))
    def get_backfill(backfill_id: str) -> dict[str, Any]:
        """The backfill's state and progress, and each date's instance and state."""
        return ops.backfill(backfill_id)

    @app.post("/backfills/{backfill_id}/stop", status_code=202, responses=_WRITE | errors(404, 422))
    def stop_backfill(backfill_id: str, wait: Wait = 0.0) -> Any:
        """Stop a RUNNING backfill: no date starts any more; running instances run on."""
        return _answer(ops.stop(backfill_id), wait)
