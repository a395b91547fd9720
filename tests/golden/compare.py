"""How a golden log's recorded rendering is compared with what today's code reads."""

from __future__ import annotations

from typing import Any


def renders(recorded: Any, decoded: Any) -> bool:
    """The decoded record says what the recorded rendering says. Fields a later schema
    version added (decoded with their defaults) may be missing from a log written before
    them: an old golden log stays a valid test instead of being rewritten."""
    if isinstance(recorded, dict) and isinstance(decoded, dict):
        return all(k in decoded and renders(v, decoded[k]) for k, v in recorded.items())
    if isinstance(recorded, list) and isinstance(decoded, list):
        return len(recorded) == len(decoded) and all(map(renders, recorded, decoded))
    return bool(recorded == decoded)
