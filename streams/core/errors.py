"""The base of every tideflow exception; `retryable` tells a caller whether trying again may
help. Each package keeps its own short `errors.py` of subclasses. Domain refusals are never
exceptions: they are `CommandRejected` events."""

from __future__ import annotations

from typing import ClassVar


class TideflowError(Exception):
    """Base class of every tideflow error."""

    retryable: ClassVar[bool] = False
