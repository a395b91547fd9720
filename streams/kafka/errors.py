"""Errors of the Kafka edge."""

from __future__ import annotations

from streams.core.errors import TideflowError


class BrokerUnavailable(TideflowError):
    """The Kafka broker could not be reached, or stopped answering, in time."""

    retryable = True


class DeliveryFailed(TideflowError):
    """The broker did not acknowledge a produced record; the batch must not be committed."""

    retryable = True
