"""What a benchmark run measures and at which scale.

Scales: `smoke` (the test's, seconds), `quick` (about a minute), `default`, `full`. Each
names the sample counts of every section; `BenchOptions.scale_params()` resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.settings import Settings

SECTIONS: tuple[str, ...] = (
    "ceiling", "chain", "throughput", "wide", "recovery", "lag", "failover", "readmodels",
)  # fmt: skip
SCALES: tuple[str, ...] = ("smoke", "quick", "default", "full")


@dataclass(frozen=True, slots=True)
class Scale:
    ceiling_round_trips: int  # two-hop round trips timed one after the other
    ceiling_records: int  # records through the batched produce -> consume loops
    chain_runs: int  # 10-task no-op chains, one after the other
    shell_runs: int  # the same chain of `true` shell tasks
    throughput_instances: int  # 10-task fan-out/fan-in instances started at once
    wide_width: int  # 1 -> width -> 1
    recovery_events: int  # events in the partition a master rebuilds
    failover_kills: int  # SIGKILLs of a master, and as many of a worker
    workers: int = 2
    worker_slots: int = 100  # DolphinScheduler's default worker exec-threads


PRESETS: dict[str, Scale] = {
    "smoke": Scale(
        ceiling_round_trips=30,
        ceiling_records=5_000,
        chain_runs=3,
        shell_runs=2,
        throughput_instances=20,
        wide_width=20,
        recovery_events=1_000,
        failover_kills=1,
    ),
    "quick": Scale(
        ceiling_round_trips=300,
        ceiling_records=50_000,
        chain_runs=10,
        shell_runs=5,
        throughput_instances=200,
        wide_width=200,
        recovery_events=10_000,
        failover_kills=3,
    ),
    "default": Scale(
        ceiling_round_trips=1_000,
        ceiling_records=200_000,
        chain_runs=30,
        shell_runs=10,
        throughput_instances=1_000,
        wide_width=1_000,
        recovery_events=100_000,
        failover_kills=5,
    ),
    "full": Scale(
        ceiling_round_trips=3_000,
        ceiling_records=500_000,
        chain_runs=100,
        shell_runs=30,
        throughput_instances=3_000,
        wide_width=1_000,
        recovery_events=300_000,
        failover_kills=10,
    ),
}


# Read models at scale, per preset: (instances projected from a generated log, instances in
# the read models in all, each with 10 attempts). Issue 17's goal is stated at a million.
READ_MODEL_SCALE: dict[str, tuple[int, int]] = {
    "smoke": (5, 3_000),
    "quick": (200, 50_000),
    "default": (2_000, 200_000),
    "full": (10_000, 1_000_000),
}
READ_MODEL_REPEATS = 30


@dataclass(frozen=True)
class BenchOptions:
    """One benchmark run.

    scale: a name of `PRESETS`. only: sections to run (default: all of `SECTIONS`; the
    ceiling runs always, every figure is a ratio to it; `lag` rides on the 1-master
    throughput run). json_path: where to write every figure. settings: the broker and
    database to use (default: the environment, else a local stack started for the run).
    log_dir: the roles' logs (default: a temporary directory, named in the output).
    profile_dir: when set, py-spy samples a master and a worker during the 1-master
    throughput run and the collapsed stacks and a summary go there. keep: leave the
    benchmark's topics and schema in place afterwards (default: removed).
    """

    scale: str = "default"
    only: frozenset[str] = field(default_factory=lambda: frozenset(SECTIONS))
    json_path: Path | None = None
    settings: Settings | None = None
    log_dir: Path | None = None
    profile_dir: Path | None = None
    keep: bool = False

    def __post_init__(self) -> None:
        if self.scale not in PRESETS:
            raise ValueError(f"unknown scale {self.scale!r}; expected one of {', '.join(SCALES)}")
        unknown = set(self.only) - set(SECTIONS)
        if unknown:
            raise ValueError(
                f"unknown section(s) {', '.join(sorted(unknown))}; "
                f"expected some of {', '.join(SECTIONS)}"
            )

    @staticmethod
    def parse_only(text: str | None) -> frozenset[str]:
        """`"chain,wide"` -> {"chain", "wide"}; empty or None: every section."""
        if not text:
            return frozenset(SECTIONS)
        return frozenset(s.strip().lower() for s in text.split(",") if s.strip())

    def scale_params(self) -> Scale:
        return PRESETS[self.scale]

    def wants(self, section: str) -> bool:
        return section == "ceiling" or section in self.only
