"""Exceptions raised by tideflow; `retryable` tells a caller whether trying again may help."""

from __future__ import annotations

from typing import ClassVar


class TideflowError(Exception):
    """Base class of every tideflow error."""

    retryable: ClassVar[bool] = False


class BrokerUnavailable(TideflowError):
    """The Kafka broker could not be reached in time."""

    retryable: ClassVar[bool] = True


class DatabaseUnavailable(TideflowError):
    """PostgreSQL could not be reached in time."""

    retryable: ClassVar[bool] = True


class StackStartFailed(TideflowError):
    """The local stack (Tansu broker or private PostgreSQL cluster) failed to start."""
