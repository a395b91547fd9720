"""Why a command was refused: data, carried by `CommandRejected` (pure)."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    NOT_FOUND = "NOT_FOUND"  # the instance or task the command names does not exist
    ALREADY_EXISTS = "ALREADY_EXISTS"  # a start for an instance id that is already taken
    INVALID_STATE = "INVALID_STATE"  # the instance or task is not in a state the command allows
    STALE_ATTEMPT = "STALE_ATTEMPT"  # an ack for an attempt that is not the current one
    INVALID_DAG = "INVALID_DAG"  # the definition cannot run: not a valid DAG, or a bad value
    # a startup parameter breaks the rule in `params.py` (a reserved or malformed name, a
    # value too long or with NUL): it could have run code on the workers
    INVALID_PARAMS = "INVALID_PARAMS"
    # deciding the command raised (a bug): the master dead-lettered it and went on; read by
    # Avro readers as the default for a reason added after their schema version
    INTERNAL_ERROR = "INTERNAL_ERROR"
