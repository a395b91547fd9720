"""Errors of the local stack and the composition root."""

from __future__ import annotations

from streams.core.errors import TideflowError


class StackStartFailed(TideflowError):
    """The local stack (Tansu broker or private PostgreSQL cluster) failed to start."""


class NotConfigured(TideflowError):
    """A setting the command needs (a broker or database address) is missing."""
