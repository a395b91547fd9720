"""The HTTP API (FastAPI; OpenAPI docs at /docs). Thin: parse, call `Service`, map errors.

Errors: an invalid definition, start parameters that could run code on a worker, or start
nodes that are not tasks of the workflow, is 422 with every problem named; an unknown
workflow or instance is 404; a write the read models do not show in time is 503 (retry helps).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.backfill_http import add_backfill_routes
from api.backfills import BackfillOps
from api.conformance import IsoTime, errors, install, problem
from api.definitions import parse_text
from api.limits import BodyLimit
from api.paging import Cursor, Limit, paged
from api.schedule_http import add_schedule_routes
from api.schedules import ScheduleOps
from api.service import (
    CONTROLS,
    TASK_CONTROLS,
    Contended,
    InvalidParams,
    InvalidStartNodes,
    NotFound,
    NotProjectedYet,
    Service,
)
from api.time_travel import Point
from projections.errors import InvalidFilter, UnknownCursor
from streams.core.definition import InvalidDefinition, parse_workflow, workflow_to_dict
from streams.core.enums import Priority, TaskDependType, WorkflowState


class RunRequest(BaseModel):
    params: dict[str, str] = Field(default_factory=dict, description="startup parameters")
    version: int | None = Field(default=None, description="definition version; latest if unset")
    instance_id: str | None = Field(default=None, description="choose the id (idempotent start)")
    dry_run: bool = Field(default=False, description="workers report SUCCESS, run nothing")
    start_nodes: list[str] = Field(
        default_factory=list, description="task codes to start from; none: the whole workflow"
    )
    scope: Literal["TASK_ONLY", "TASK_PRE", "TASK_POST"] = Field(
        default="TASK_POST",
        description="with the start nodes: them only, also upstream, or also downstream tasks",
    )
    priority: Literal["HIGHEST", "HIGH", "MEDIUM", "LOW", "LOWEST"] = Field(
        default="MEDIUM", description="workflow priority: order among instances waiting for slots"
    )


class ExecuteTasksRequest(BaseModel):
    start_nodes: list[str] = Field(min_length=1, description="task codes to run again")
    scope: Literal["TASK_ONLY", "TASK_PRE", "TASK_POST"] = Field(
        default="TASK_POST",
        description="the start nodes only, also upstream, or also downstream tasks",
    )


# Path and filter values the API takes, as enums so that the document lists them.
StateFilter = StrEnum(  # type: ignore[misc]
    "StateFilter",
    {form: form for s in WorkflowState for form in (s.name, s.name.lower(), str(s.value))},
)

_TASK_SCHEMA = {
    "type": "object",
    "required": ["code"],
    "properties": {
        "code": {"type": "string"},
        "type": {"type": "string"},
        "command": {"type": "string"},
        "depends": {"type": "array", "items": {"type": "string"}},
    },
}
# A definition's cross-field rules (dependencies name tasks of the same workflow, no cycle)
# are beyond JSON Schema: a body this schema allows can still be 422, with every problem named.
DEFINITION_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["code", "tasks"],
                "properties": {
                    "code": {"type": "string"},
                    "description": {"type": "string"},
                    "failure_strategy": {"type": "string", "enum": ["continue", "end"]},
                    "tasks": {"type": "array", "items": _TASK_SCHEMA},
                },
            }
        },
        "application/yaml": {"schema": {"type": "string"}},
    },
}


class Accepted(BaseModel):
    instance_id: str
    command_id: str


class RegisteredOut(BaseModel):
    code: str
    version: int
    created: bool


CONTROL_DOCS = {
    "pause": "PAUSE: running tasks finish, nothing new starts.",
    "stop": "STOP: running tasks are killed.",
    "resume": "RECOVER_SUSPENDED_PROCESS / START_FAILURE_TASK_PROCESS: a paused, stopped or "
    "failed instance goes on; unfinished tasks run again.",
    "rerun": "REPEAT_RUNNING: a finished instance runs its whole DAG again, same id.",
    "force-success": "A FAILURE or KILL task of a finished instance becomes FORCED_SUCCESS.",
    "stop-task": "A running task is killed; the instance goes on.",
}
_WRONG_STATE = " A wrong state ends as a CommandRejected event (see /rejections)."


def _control(service: Service, action: str) -> Any:
    def control(instance_id: str) -> Any:
        service.instance(instance_id)  # 404 for an unknown instance
        return service.control(instance_id, action)

    control.__name__ = f"control_{action}"
    control.__doc__ = CONTROL_DOCS[action] + _WRONG_STATE
    return control


def _task_control(service: Service, action: str) -> Any:
    def task_control(instance_id: str, task_code: str) -> Any:
        service.instance(instance_id)
        return service.task_control(instance_id, task_code, action)

    task_control.__name__ = f"task_control_{action.replace('-', '_')}"
    return task_control


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="tideflow",
        description="Event-sourced DAG workflow scheduler on Kafka (DolphinScheduler semantics)",
        version="0.1.0",
    )
    app.add_middleware(BodyLimit)

    install(app)

    @app.exception_handler(InvalidDefinition)
    async def _invalid(_: Request, exc: InvalidDefinition) -> JSONResponse:
        return problem(422, "invalid workflow definition", exc.problems)

    @app.exception_handler(InvalidParams)
    async def _invalid_params(_: Request, exc: InvalidParams) -> JSONResponse:
        return problem(422, "invalid parameters", exc.problems)

    @app.exception_handler(InvalidStartNodes)
    async def _invalid_start_nodes(_: Request, exc: InvalidStartNodes) -> JSONResponse:
        return problem(422, "invalid start nodes", exc.problems)

    @app.exception_handler(InvalidFilter)
    async def _invalid_filter(_: Request, exc: InvalidFilter) -> JSONResponse:
        return problem(422, str(exc))

    @app.exception_handler(UnknownCursor)
    async def _unknown_cursor(_: Request, exc: UnknownCursor) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc))

    @app.exception_handler(Contended)
    async def _contended(_: Request, exc: Contended) -> JSONResponse:
        return problem(409, str(exc))

    @app.exception_handler(NotProjectedYet)
    async def _lagging(_: Request, exc: NotProjectedYet) -> JSONResponse:
        return problem(503, str(exc))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/workflows",
        response_model=RegisteredOut,
        status_code=201,
        responses={
            200: {"model": RegisteredOut, "description": "the same content: already registered"},
            **errors(400, 409, 413, 422, 503),
        },
        openapi_extra={"requestBody": DEFINITION_BODY},
    )
    async def register(request: Request) -> Any:
        """Register a definition (JSON body, or YAML with a YAML content type): 201 with the
        new version, 200 when the latest version has the same content."""
        body = (await request.body()).decode("utf-8", errors="replace")
        if "yaml" in request.headers.get("content-type", ""):
            workflow = parse_text(body)
        else:
            try:
                workflow = parse_workflow(json.loads(body))
            except json.JSONDecodeError as exc:
                raise InvalidDefinition([f"body is not valid JSON: {exc}"]) from exc
        result = service.register(workflow, by="api")
        status = 201 if result.created else 200
        return JSONResponse(status_code=status, content=result.__dict__)

    @app.get("/workflows", responses=errors(404, 422))
    def list_workflows(
        request: Request, response: Response, limit: Limit = 100, cursor: Cursor = None
    ) -> list[dict[str, Any]]:
        """The latest version of each workflow, by code."""
        return paged(request, response, service.definition_page(limit, cursor))

    @app.get("/workflows/{code}", responses=errors(404, 422))
    def get_workflow(code: str, version: int | None = None) -> dict[str, Any]:
        """A definition: the latest version, or the one asked for."""
        return workflow_to_dict(service.definition(code, version))

    @app.post(
        "/workflows/{code}/runs",
        response_model=Accepted,
        status_code=202,
        responses=errors(400, 404, 413, 422),
    )
    def run(code: str, body: Annotated[RunRequest | None, Body()] = None) -> Any:
        """Start an instance; returns before a master has run it (202 Accepted). Parameters
        whose names the shell, loader or worker read (PATH, BASH_ENV, LD_*...) are 422."""
        req = body or RunRequest()
        return service.start(
            code, req.params, version=req.version, instance_id=req.instance_id, by="api",
            dry_run=req.dry_run, start_nodes=req.start_nodes, scope=TaskDependType[req.scope],
            priority=Priority[req.priority],
        )  # fmt: skip

    @app.get("/instances", responses=errors(404, 422))
    def list_instances(
        request: Request,
        response: Response,
        workflow: str | None = None,
        state: Annotated[
            StateFilter | None, Query(description="a state: its name or its code")
        ] = None,
        requested_by: Annotated[str | None, Query(description="who started it")] = None,
        worker: Annotated[str | None, Query(description="a worker ran an attempt")] = None,
        since: Annotated[IsoTime | None, Query(description="started at or after")] = None,
        until: Annotated[IsoTime | None, Query(description="started before")] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        """Instances, newest first; every filter narrows the list."""
        page = service.instance_page(
            workflow_code=workflow, state=None if state is None else state.value,
            requested_by=requested_by, worker_id=worker, since=since, until=until, limit=limit,
            cursor=cursor,
        )  # fmt: skip
        return paged(request, response, page)

    @app.get("/instances/{instance_id}", responses=errors(404, 422))
    def get_instance(instance_id: str) -> dict[str, Any]:
        return service.instance(instance_id)

    @app.get("/instances/{instance_id}/history", responses=errors(404, 422))
    def history(
        request: Request,
        response: Response,
        instance_id: str,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        """The instance's events in log order."""
        service.instance(instance_id)  # 404 for an unknown instance
        return paged(request, response, service.history_page(instance_id, limit, cursor))

    @app.get("/instances/{instance_id}/as-of", responses=errors(404, 422))
    def instance_as_of(
        instance_id: str,
        at: Annotated[
            Annotated[int, Field(ge=0)] | IsoTime,
            Query(description="an offset of the events partition, or an ISO time (UTC if naive)"),
        ],
    ) -> dict[str, Any]:
        """Time travel: the instance as it was at that point (its state, every attempt, who
        requested what, the events up to there), folded from the events log itself."""
        return service.instance_at(instance_id, Point.of(at))

    @app.post(
        "/instances/{instance_id}/execute-tasks",
        response_model=Accepted,
        status_code=202,
        responses=errors(400, 404, 413, 422),
    )
    def execute_tasks(instance_id: str, body: ExecuteTasksRequest) -> Any:
        """EXECUTE_TASK: chosen tasks of a SUCCESS or FAILURE instance run again inside it;
        a wrong state or a task the instance does not run ends as a CommandRejected event."""
        service.instance(instance_id)
        return service.execute_tasks(instance_id, body.start_nodes, TaskDependType[body.scope])

    # One path per control (not /{action}): a method a path does not take is a 405 there,
    # whatever its last segment, and the document lists each control.
    for action in CONTROLS:
        app.add_api_route(
            f"/instances/{{instance_id}}/{action}",
            _control(service, action),
            methods=["POST"],
            response_model=Accepted,
            status_code=202,
            responses=errors(404, 422),
            summary=f"{action.capitalize()} an instance",
            description=CONTROL_DOCS[action] + _WRONG_STATE,
        )
    for action in TASK_CONTROLS:
        app.add_api_route(
            f"/instances/{{instance_id}}/tasks/{{task_code}}/{action}",
            _task_control(service, action),
            methods=["POST"],
            response_model=Accepted,
            status_code=202,
            responses=errors(404, 422),
            summary=f"{action.replace('-', ' ').capitalize()}: one task of an instance",
            description=CONTROL_DOCS["stop-task" if action == "stop" else action] + _WRONG_STATE,
        )

    @app.get("/workers", responses=errors(404, 422))
    def workers(
        request: Request, response: Response, limit: Limit = 100, cursor: Cursor = None
    ) -> list[dict[str, Any]]:
        """Workers by group and id, with their latest heartbeat."""
        return paged(request, response, service.worker_page(limit, cursor))

    @app.get("/stats", responses=errors(422))
    def stats(
        workflow: str | None = None,
        since: Annotated[IsoTime | None, Query(description="started at or after")] = None,
        until: Annotated[IsoTime | None, Query(description="started before")] = None,
    ) -> dict[str, Any]:
        """Instances by state and by day, per workflow (failure rate, duration p50/p95) and
        per task (attempts, retries, failures, duration p50/p95/max) over a start-time range."""
        return service.stats(workflow, since, until)

    @app.get("/rejections", responses=errors(404, 422))
    def rejections(
        request: Request,
        response: Response,
        instance: str | None = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        """Refused commands (CommandRejected), newest first; of one instance when given."""
        return paged(request, response, service.rejections(instance, limit, cursor))

    add_schedule_routes(app, ScheduleOps(service))
    add_backfill_routes(app, BackfillOps(service))
    return app
