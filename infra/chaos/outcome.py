"""What a chaos run is asked to do (`ChaosOptions`) and what it found (`ChaosOutcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.chaos.check import CheckResult
from infra.chaos.faults import Crash, FaultRecord, PlannedFault
from infra.chaos.measure import Timing
from infra.chaos.records import Violation
from infra.settings import Settings
from streams.core.errors import TideflowError


class ChaosAborted(TideflowError):
    """The chaos run could not get going (the system did not run even the canary)."""


@dataclass(frozen=True, slots=True)
class ChaosOptions:
    duration_s: float = 120.0  # fault phase
    seed: int = 1
    masters: int = 2
    workers: int = 2
    partitions: int = 4
    start_rate: float = 1.0  # instances started per second
    bad_input_rate: float = 0.5  # bad records per second
    fault_interval_s: float = 4.0  # mean time between faults
    settle_timeout_s: float = 120.0  # bound on waiting for every instance to end
    worker_timeout_s: float = 1.5  # the defaults: failover as deployed
    heartbeat_interval_s: float = 0.5
    session_timeout_ms: int = 1000
    dispatch_ack_timeout_s: float = 10.0
    snapshot_interval_s: float = 5.0  # masters snapshot often, so takeovers start from one
    worker_slots: int = 4
    postgres_faults: bool = True
    pause_faults: bool = False  # also SIGSTOP/SIGCONT masters and workers (zombies; fencing)
    max_down: int = 1  # members of one role down at once
    # Schedulers (0: none) and schedules of the no-op workflow every 2 s, with scheduler
    # faults and the invariant "every fire time in the window has exactly one instance".
    schedulers: int = 0
    schedules: int = 4
    workdir: Path | None = None  # logs, run journal (a kept temporary directory by default)
    settings: Settings | None = None  # default: load_settings()


@dataclass
class ChaosOutcome:
    options: ChaosOptions
    workdir: Path
    deployment: str = ""
    started: list[str] = field(default_factory=list)
    controls: int = 0
    faults: list[FaultRecord] = field(default_factory=list)
    planned: list[PlannedFault] = field(default_factory=list)
    skipped: list[PlannedFault] = field(default_factory=list)
    crashes: list[Crash] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    result: CheckResult | None = None
    timings: list[Timing] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    snapshot_takeovers: dict[str, int] = field(default_factory=dict)  # "used"/"none": count

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.violations
