"""The README's main job, end to end on real parts: local stack up, roles started, the
example workflow registered and run, its task table (PostgreSQL) and event history printed,
everything stopped. Returns the exit code: 0 only if the instance succeeded."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console

from api.cli import print_history, print_instance, wait_with_progress
from api.definitions import load_file
from infra import compose
from infra.prepare import prepare
from infra.processes import Fleet
from infra.settings import load_settings
from infra.stack import LocalStack
from streams.core.enums import WorkflowState


def run_demo(file: Path, console: Console) -> int:
    workflow = load_file(file)
    with LocalStack(load_settings()) as settings:
        console.print(f"[bold]stack[/bold]  broker {settings.bootstrap}  database {settings.dsn}")
        prepare(settings)
        logs = Path(tempfile.mkdtemp(prefix="tideflow-demo-logs-"))
        with Fleet(settings, log_dir=logs) as fleet:
            for role in ("master", "worker", "projector"):
                fleet.start(role)
            service = compose.service(settings)
            registered = service.register(workflow, by="demo")
            console.print(
                f"[bold]registered[/bold] {registered.code} version {registered.version} "
                f"({len(workflow.tasks)} tasks)"
            )
            started = service.start(workflow.code, by="demo")
            instance_id = started["instance_id"]
            console.print(f"[bold]started[/bold] instance {instance_id}")
            final = wait_with_progress(service, instance_id, len(workflow.tasks), timeout=300)
            print_instance(service.instance(instance_id))
            print_history(service.history(instance_id))
            service.close()
            console.print(f"process logs: {logs}")
        console.print("[bold]stopped[/bold] master, worker, projector, broker and database")
    return 0 if final.get("state") == WorkflowState.SUCCESS.name else 1
