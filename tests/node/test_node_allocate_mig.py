"""Allocate on a template partition model (MIG, simulated A100s): the agent creates the instance at a
free placement, exposes it, records it, destroys it when the pod is gone, and destroys it again when a
later step of the same Allocate fails (nothing half-made)."""

from __future__ import annotations

import grpc
import pytest
from node_agent_fixtures import bound_pod, pod_annotations

RESOURCE = "nvidia.com/gpu"


def _handles(agent) -> list[dict]:
    return [h["handle"] for rec, _ in agent.state.list() for hs in rec.partitions.values() for h in hs]


def test_two_mig_tenants_get_distinct_instances_and_cleanup_destroys_them(mig_agent, kubelet, api):
    dev = mig_agent.inventory.devices[0]
    bound_pod(api, "m1", f"{dev.uuid},NVIDIA,9728,13:;", bind_time=1)
    bound_pod(api, "m2", f"{dev.uuid},NVIDIA,9728,13:;", bind_time=2)
    ids = kubelet.healthy(RESOURCE)
    envs = [dict(kubelet.allocate(RESOURCE, [[ids[i]]]).container_responses[0].envs) for i in (0, 1)]
    migs = [e["NVIDIA_VISIBLE_DEVICES"] for e in envs]
    assert all(m.startswith("MIG-") for m in migs) and migs[0] != migs[1]
    assert not any(k.startswith("CUDA_DEVICE_MEMORY_LIMIT") for e in envs for k in e)
    handles = _handles(mig_agent)
    assert sorted(h["placement"]["start"] for h in handles) == [0, 1] and {h["profile"] for h in handles} == {"1g.10gb"}
    assert pod_annotations(api, "m1")["hami.io/bind-phase"] == "success"
    api.delete_pod("default", "m1")
    api.delete_pod("default", "m2")
    assert mig_agent.cleanup() == 2
    # the instances are gone: the same placement can be created again
    from hami_hal.models import DeviceSlice, Placement

    again = mig_agent.hal.create_partition(dev, DeviceSlice(vendor="nvidia", uuid=dev.uuid, device_index=0,
                                                            common_word="NVIDIA", memory_mib=9728, compute_percent=13,
                                                            template="1g.10gb", placement=Placement(start=0, size=1)))
    assert again["placement"]["start"] == 0
    assert mig_agent.hal.destroy_partition(dev, again)


def test_an_unknown_instance_on_the_placement_is_stepped_over(mig_agent, kubelet, api):
    from hami_hal.models import DeviceSlice, Placement

    dev = mig_agent.inventory.devices[0]
    stray = mig_agent.hal.create_partition(dev, DeviceSlice(
        vendor="nvidia", uuid=dev.uuid, device_index=0, common_word="NVIDIA", memory_mib=9728, compute_percent=13,
        template="1g.10gb", placement=Placement(start=0, size=1)))
    try:
        bound_pod(api, "m", f"{dev.uuid},NVIDIA,9728,13:;")
        kubelet.allocate(RESOURCE, [[kubelet.healthy(RESOURCE)[0]]])
        assert [h["placement"]["start"] for h in _handles(mig_agent)] == [1]
        api.delete_pod("default", "m")
        assert mig_agent.cleanup() == 1
    finally:
        mig_agent.hal.destroy_partition(dev, stray)


def test_failure_after_creation_destroys_the_instance(mig_agent, kubelet, api, monkeypatch):
    dev = mig_agent.inventory.devices[0]
    bound_pod(api, "m", f"{dev.uuid},NVIDIA,9728,13:;")
    created: list[dict] = []
    destroyed: list[dict] = []
    real_create, real_destroy = mig_agent.hal.create_partition, mig_agent.hal.destroy_partition
    monkeypatch.setattr(mig_agent.hal, "create_partition", lambda d, s: created.append(real_create(d, s)) or created[-1])
    monkeypatch.setattr(mig_agent.hal, "destroy_partition",
                        lambda d, h: destroyed.append(h) or real_destroy(d, h))

    def broken(*a, **k):
        raise ValueError("env CUDA_VISIBLE_DEVICES set to both '0' and '1'")

    monkeypatch.setattr(mig_agent.hal, "container_edits", broken)
    with pytest.raises(grpc.RpcError) as info:
        kubelet.allocate(RESOURCE, [[kubelet.healthy(RESOURCE)[0]]])
    assert "set to both" in info.value.details()
    assert len(created) == 1 and destroyed == created
    assert pod_annotations(api, "m")["hami.io/bind-phase"] == "failed"
    assert mig_agent.state.list() == [] and not list(mig_agent.state.root.glob("0000-m_*"))
