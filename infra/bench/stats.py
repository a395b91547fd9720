"""Summaries of samples: percentiles by linear interpolation (numpy's default), in ms."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) of `values`; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float], digits: int = 2) -> dict[str, Any]:
    """n, p50, p95, p99, min, max and mean of `values` (rounded); None figures when empty."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "n": len(values),
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "p99": r(percentile(values, 99)),
        "min": r(min(values)) if values else None,
        "max": r(max(values)) if values else None,
        "mean": r(sum(values) / len(values)) if values else None,
    }


def ratio(value: float | None, ceiling: float | None, digits: int = 2) -> float | None:
    """value / ceiling, or None when either is missing (or the ceiling is zero)."""
    if value is None or not ceiling:
        return None
    return round(value / ceiling, digits)
