"""What a master is configured with (typed; the composition root reads the environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from streams.core.placement import BusyThresholds, HostSelector
from streams.kafka.config import KafkaConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class MasterConfig:
    kafka: KafkaConfig
    # A worker silent this long is lost: its attempts fail over. Three of the workers'
    # heartbeat intervals (0.5 s); it must also exceed the clock skew between hosts.
    worker_timeout_s: float = 1.5
    dispatch_ack_timeout_s: float = 60.0  # a dispatch not acknowledged by then is re-dispatched
    snapshot_every_events: int = 5000
    snapshot_interval_s: float = 30.0
    # Host selection: the strategy of every worker group, but those named in `selector_by_group`
    host_selector: HostSelector = HostSelector.IDLE_FIRST
    selector_by_group: Mapping[str, HostSelector] = field(
        default_factory=lambda: MappingProxyType({})
    )
    busy: BusyThresholds = field(default_factory=BusyThresholds)  # over them: no new work

    def selector(self, group: str) -> HostSelector:
        return self.selector_by_group.get(group, self.host_selector)
