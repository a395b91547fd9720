"""Errors of the serde layer."""

from __future__ import annotations

from streams.core.errors import TideflowError


class DecodeError(TideflowError):
    """A record's bytes are not a tideflow Avro record this reader knows; dead-letter it."""


class SchemaDrift(TideflowError):
    """A record class no longer matches its latest .avsc: run `python -m schemas.generate`."""
