"""The HTTP API (FastAPI; OpenAPI docs at /docs). Thin: parse, call `Service`, map errors.

Errors: an invalid definition, start parameters that could run code on a worker, or start
nodes that are not tasks of the workflow, is 422 with every problem named; an unknown
workflow or instance is 404; a write the read models do not show in time is 503 (retry helps).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.definitions import parse_text
from api.limits import BodyLimit
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
from projections.queries import InvalidFilter
from streams.core.definition import InvalidDefinition, parse_workflow, workflow_to_dict
from streams.core.enums import Priority, TaskDependType


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


class Accepted(BaseModel):
    instance_id: str
    command_id: str


class RegisteredOut(BaseModel):
    code: str
    version: int
    created: bool


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="tideflow",
        description="Event-sourced DAG workflow scheduler on Kafka (DolphinScheduler semantics)",
        version="0.1.0",
    )
    app.add_middleware(BodyLimit)

    @app.exception_handler(InvalidDefinition)
    async def _invalid(_: Request, exc: InvalidDefinition) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={"detail": "invalid workflow definition", "problems": exc.problems},
        )

    @app.exception_handler(InvalidParams)
    async def _invalid_params(_: Request, exc: InvalidParams) -> JSONResponse:
        return JSONResponse(
            status_code=422, content={"detail": "invalid parameters", "problems": exc.problems}
        )

    @app.exception_handler(InvalidStartNodes)
    async def _invalid_start_nodes(_: Request, exc: InvalidStartNodes) -> JSONResponse:
        return JSONResponse(
            status_code=422, content={"detail": "invalid start nodes", "problems": exc.problems}
        )

    @app.exception_handler(InvalidFilter)
    async def _invalid_filter(_: Request, exc: InvalidFilter) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(Contended)
    async def _contended(_: Request, exc: Contended) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(NotProjectedYet)
    async def _lagging(_: Request, exc: NotProjectedYet) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/workflows", response_model=RegisteredOut, status_code=201)
    async def register(request: Request) -> Any:
        """Register a definition (JSON body, or YAML with a YAML content type)."""
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

    @app.get("/workflows")
    def list_workflows() -> list[dict[str, Any]]:
        return service.definitions()

    @app.get("/workflows/{code}")
    def get_workflow(code: str, version: int | None = None) -> dict[str, Any]:
        return workflow_to_dict(service.definition(code, version))

    @app.post("/workflows/{code}/runs", response_model=Accepted, status_code=202)
    def run(code: str, body: Annotated[RunRequest | None, Body()] = None) -> Any:
        """Start an instance; returns before a master has run it (202 Accepted). Parameters
        whose names the shell, loader or worker read (PATH, BASH_ENV, LD_*...) are 422."""
        req = body or RunRequest()
        return service.start(
            code, req.params, version=req.version, instance_id=req.instance_id, by="api",
            dry_run=req.dry_run, start_nodes=req.start_nodes, scope=TaskDependType[req.scope],
            priority=Priority[req.priority],
        )  # fmt: skip

    @app.get("/instances")
    def list_instances(
        workflow: str | None = None,
        state: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return service.instances(workflow, state, limit)

    @app.get("/instances/{instance_id}")
    def get_instance(instance_id: str) -> dict[str, Any]:
        return service.instance(instance_id)

    @app.get("/instances/{instance_id}/history")
    def history(instance_id: str) -> list[dict[str, Any]]:
        service.instance(instance_id)  # 404 for an unknown instance
        return service.history(instance_id)

    @app.post("/instances/{instance_id}/execute-tasks", response_model=Accepted, status_code=202)
    def execute_tasks(instance_id: str, body: ExecuteTasksRequest) -> Any:
        """EXECUTE_TASK: chosen tasks of a SUCCESS or FAILURE instance run again inside it;
        a wrong state or a task the instance does not run ends as a CommandRejected event."""
        service.instance(instance_id)
        return service.execute_tasks(instance_id, body.start_nodes, TaskDependType[body.scope])

    @app.post("/instances/{instance_id}/{action}", response_model=Accepted, status_code=202)
    def control(instance_id: str, action: str) -> Any:
        """pause, stop, resume or rerun; a wrong state ends as a CommandRejected event."""
        if action not in CONTROLS:
            raise HTTPException(404, f"unknown action {action!r}: {', '.join(CONTROLS)}")
        service.instance(instance_id)
        return service.control(instance_id, action)

    @app.post(
        "/instances/{instance_id}/tasks/{task_code}/{action}",
        response_model=Accepted,
        status_code=202,
    )
    def task_control(instance_id: str, task_code: str, action: str) -> Any:
        """force-success (a FAILURE or KILL task of a finished instance) or stop (a running
        task, the instance goes on); a wrong state ends as a CommandRejected event."""
        if action not in TASK_CONTROLS:
            raise HTTPException(404, f"unknown task action {action!r}: {', '.join(TASK_CONTROLS)}")
        service.instance(instance_id)
        return service.task_control(instance_id, task_code, action)

    @app.get("/workers")
    def workers() -> list[dict[str, Any]]:
        return service.workers()

    return app
