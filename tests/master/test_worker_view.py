"""The master's view of a worker from its heartbeat: load as shares, its group's selector,
the BUSY thresholds and round robin's dispatch clock; and how settings configure them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from infra.settings import Settings
from streams.core.placement import BusyThresholds, HostSelector
from streams.core.worker_messages import WorkerHeartbeat
from streams.kafka.config import KafkaConfig
from streams.master.config import MasterConfig
from streams.master.registry import view
from streams.master.slot_count import SlotCount

AT = datetime(2024, 6, 1, tzinfo=UTC)


def heartbeat(worker_id: str = "w1", group: str = "gpu", cpu: float = 50.0,
              memory: float = 20.0) -> WorkerHeartbeat:  # fmt: skip
    return WorkerHeartbeat(
        worker_id=worker_id, worker_group=group, host="h", pid=1, slots_total=4, slots_free=4,
        cpu_percent=cpu, memory_percent=memory, load_average=0.1, version="t", started_at=AT,
        at=AT, weight=250,
    )  # fmt: skip


def config(**kw: object) -> MasterConfig:
    return MasterConfig(kafka=KafkaConfig(bootstrap_servers="x:1"), **kw)  # type: ignore[arg-type]


def test_a_view_carries_load_weight_selector_and_the_last_dispatch() -> None:
    slots = SlotCount()
    slots.dispatched("w0")
    slots.dispatched("w1")
    cfg = config(selector_by_group={"gpu": HostSelector.ROUND_ROBIN})

    v = view(heartbeat(), cfg, slots)

    assert (v.cpu, v.memory, v.weight, v.last_assigned) == (0.5, 0.2, 250, 2)
    assert (v.selector, v.busy, v.slots_free) == (HostSelector.ROUND_ROBIN, False, 3)
    assert view(heartbeat(group="cpu"), cfg, slots).selector is HostSelector.IDLE_FIRST


def test_a_worker_over_a_busy_threshold_is_busy() -> None:
    cfg = config(busy=BusyThresholds(cpu=0.7, memory=0.7))

    assert view(heartbeat(cpu=71.0), cfg, SlotCount()).busy
    assert view(heartbeat(memory=90.0), cfg, SlotCount()).busy
    assert not view(heartbeat(cpu=70.0, memory=70.0), cfg, SlotCount()).busy


def test_settings_turn_the_environment_into_selectors_and_thresholds() -> None:
    s = Settings(
        kafka_bootstrap_servers="x:1",
        tideflow_host_selector="random",
        tideflow_host_selector_groups="gpu=round_robin, etl = WEIGHTED",
        tideflow_worker_busy_cpu_percent=70,
        tideflow_worker_weight=300,
    )

    m = s.master
    assert m.host_selector is HostSelector.RANDOM
    assert dict(m.selector_by_group) == {
        "gpu": HostSelector.ROUND_ROBIN,
        "etl": HostSelector.WEIGHTED,
    }
    assert m.busy == BusyThresholds(cpu=0.7, memory=None)
    assert s.worker.weight == 300
    assert Settings(kafka_bootstrap_servers="x:1").master.busy == BusyThresholds()


@pytest.mark.parametrize("bad", ["gpu", "gpu=fastest", "=random"])
def test_a_bad_selector_group_is_refused_at_start_up(bad: str) -> None:
    with pytest.raises(ValidationError, match="expected group=selector"):
        Settings(tideflow_host_selector_groups=bad)
