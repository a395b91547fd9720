"""The chaos suite: a seeded load of mixed workflows (and bad input) against several masters
and workers while processes are killed and restarted, then invariants checked from the event
log and the read models. `run_chaos(ChaosOptions(...), console)` is `tideflow chaos`."""

from infra.chaos.outcome import ChaosOptions, ChaosOutcome
from infra.chaos.runner import run, run_chaos

__all__ = ["ChaosOptions", "ChaosOutcome", "run", "run_chaos"]
