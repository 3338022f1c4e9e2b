"""GetPreferredAllocation without a waiting pod: must-include first, then the best-linked distinct devices."""

from __future__ import annotations

from hami_hal.models import Device, PartitionKind, PartitionModel, Provenance
from hami_hal.node.plugin_server import preferred


def _dev(i: int) -> Device:
    return Device(vendor="v", index=i, uuid=f"D{i}", model="m", hami_type="m", memory_mib=1,
                  partition=PartitionModel(kind=PartitionKind.SHARES, memory_mib=1, max_slots=2),
                  provenance=Provenance(source="simulated"))


REPLICAS = {f"D{i}-{r}": _dev(i) for i in range(4) for r in range(2)}
SCORES = {("D0", "D3"): 100, ("D3", "D0"): 100, ("D0", "D1"): 10, ("D1", "D0"): 10}


def test_best_linked_device_after_must_include():
    got = preferred(REPLICAS, list(REPLICAS), ["D0-1"], 2, [], SCORES)
    assert got == ["D0-1", "D3-0"]


def test_scheduler_choice_wins_over_links():
    assert preferred(REPLICAS, list(REPLICAS), [], 2, ["D2", "D1"], SCORES) == ["D2-0", "D1-0"]


def test_distinct_devices_then_any_id_when_short():
    avail = ["D1-0", "D1-1", "D2-0"]
    assert preferred(REPLICAS, avail, [], 3, [], SCORES) == ["D1-0", "D2-0", "D1-1"]
    assert preferred(REPLICAS, avail, [], 0, [], SCORES) == []
