"""Errors of the PostgreSQL edge."""

from __future__ import annotations

from streams.core.errors import TideflowError


class DatabaseUnavailable(TideflowError):
    """PostgreSQL could not be reached in time."""

    retryable = True
