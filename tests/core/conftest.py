"""Fixtures for the core's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.core.definition import start_problems
from streams.core.evolve import _dispatch_order

MEMOIZED = (start_problems, _dispatch_order)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """Every test computes what the core memoizes: a result cached by an earlier test (or
    by the unmutated code, under mutation testing) would hide a wrong computation."""
    for memoized in MEMOIZED:
        memoized.cache_clear()
    yield
