"""Errors of the Kafka edge."""

from __future__ import annotations

from infra.errors import TideflowError


class DeliveryFailed(TideflowError):
    """The broker did not acknowledge a produced record; the batch must not be committed."""

    retryable = True
