"""A pod another scheduler bound wins over this cache's unbound reservation on the same devices (liveness)."""

from __future__ import annotations

import pytest
from hami_scheduler.state import ClusterState
from sched_testing import NVIDIA, gpu_node, gpu_pod

from hami_hal.errors import InputError
from hami_hal.models import ContainerAllocation, DeviceSlice, PodAllocation


def _alloc(name: str, mem: int) -> PodAllocation:
    sl = DeviceSlice(vendor="nvidia", uuid="GPU-n1-0", device_index=0, common_word="NVIDIA", memory_mib=mem,
                     compute_percent=0)
    return PodAllocation(namespace="default", name=name, node="n1",
                         containers=[ContainerAllocation(name="main", index=0, slices=[sl])])


def _bound(name: str, mem: int) -> dict:
    pod = gpu_pod(name, mem=mem, cores=0)
    pod["metadata"]["annotations"] = {"hami.io/vgpu-node": "n1",
                                      "hami.io/vgpu-devices-allocated": f"GPU-n1-0,NVIDIA,{mem},0:;"}
    pod["spec"]["nodeName"] = "n1"
    return pod


def test_bound_pod_evicts_unbound_reservations_not_claims():
    cluster = ClusterState([NVIDIA])
    cluster.upsert_node(gpu_node("n1", gpus=1, mem=40960))
    cluster.reserve(_alloc("mine", 30000))  # this scheduler's filter decision, not yet bound
    cluster.upsert_pod(_bound("theirs", 30000))  # the other scheduler bound it first
    assert set(cluster.pods) == {"default/theirs"} and "default/theirs" in cluster.claims
    assert "a bound pod needs its devices" in cluster.rejected["pod:default/mine"]
    # a second bound pod that does not fit beside a claim is still refused, and changes nothing
    before = cluster.snapshot()
    with pytest.raises(InputError, match="does not fit the node"):
        cluster.upsert_pod(_bound("late", 30000))
    assert cluster.snapshot() == before
