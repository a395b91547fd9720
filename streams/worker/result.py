"""How one attempt ended, whatever ran it (a process, an HTTP call, SQL statements)."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.core.enums import Outcome

NOT_STARTED = -1  # exit code of an attempt whose process never ran


@dataclass(frozen=True, slots=True)
class Result:
    """How an attempt ended. `exit_code` follows the shell: 128 + N for a death by signal N."""

    outcome: Outcome
    exit_code: int
    output: str = ""
    out_params: dict[str, str] = field(default_factory=dict)  # what the attempt set
