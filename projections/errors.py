"""Errors of the read-model queries that are the caller's input, not bugs."""

from __future__ import annotations

from streams.core.errors import TideflowError


class InvalidFilter(TideflowError, ValueError):
    """A list filter or cursor that names nothing (an unknown state, a foreign cursor)."""


class UnknownCursor(TideflowError, LookupError):
    """A cursor that names no position of the list it was given to (not a `next_cursor` of
    it): the page it asks for does not exist."""
