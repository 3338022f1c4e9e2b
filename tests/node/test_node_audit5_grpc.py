"""Audit 5: the device plugin's gRPC inputs the existing Allocate tests do not cover.

Found attacking main at 0fc1629 (record: docs/results/2026-12-05-audit5.md): GetPreferredAllocation took
any number of IDs and any ``allocation_size`` (Allocate was bounded), and the step that pads the answer
with further IDs tested membership in a list, so its time grew with the square of the IDs sent (20,000
IDs: 1.1 s of the agent's gRPC thread; a 4 MiB message holds some 400,000).
"""

from __future__ import annotations

import grpc
import pytest
from node_agent_fixtures import bound_pod, pod_annotations

from hami_hal.node.plugin_server import MAX_IDS, preferred

RESOURCE = "nvidia.com/gpu"


@pytest.fixture
def ready(agent, kubelet):
    assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 20)
    return agent


@pytest.mark.parametrize(("available", "size"), [
    ([f"x{i}" for i in range(MAX_IDS + 1)], 1),  # more IDs than Allocate would take
    ([], MAX_IDS + 1),  # an allocation size no container asks for
    ([], -1),
], ids=["too-many-ids", "huge-size", "negative-size"])
def test_preferred_allocation_out_of_bounds_is_refused_and_the_agent_serves_on(ready, kubelet, available, size):
    with pytest.raises(grpc.RpcError) as info:
        kubelet.preferred(RESOURCE, available, [], size)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "over the bound" in info.value.details() and "\n" not in info.value.details()
    ids = kubelet.healthy(RESOURCE)
    assert len(kubelet.preferred(RESOURCE, ids, [], 2)) == 2


def test_preferred_pads_with_each_id_once_and_ignores_unknown_ones():
    unknown = [f"junk-{i}" for i in range(50_000)] + ["junk-1", "junk-2"]  # repeated IDs too
    got = preferred({}, unknown, ["junk-7", "junk-7"], 40_000, [])
    assert len(got) == 40_000 and len(set(got)) == 40_000 and got[0] == "junk-7"


def test_repeated_device_ids_from_the_kubelet_are_a_count_mismatch_not_two_devices(ready, kubelet, api):
    uuid = ready.inventory.devices[0].uuid
    bound_pod(api, "rep", f"{uuid},NVIDIA,1024,10:;")
    one = kubelet.healthy(RESOURCE)[0]
    with pytest.raises(grpc.RpcError) as info:
        kubelet.allocate(RESOURCE, [[one, one]])
    assert "device number not matched" in info.value.details()
    assert pod_annotations(api, "rep")["hami.io/bind-phase"] == "failed"  # nothing half-made
    assert not list(ready.state.root.glob("0000-rep_*"))


@pytest.mark.xfail(strict=True, reason="gap (audit5): the agent trusts the pod's to-allocate annotation, which "
                   "whoever may update the pod can edit between bind and Allocate; it does not replay the other "
                   "claims on the node (as the scheduler's bind does), so an edited value naming a device another "
                   "pod holds in full is handed out. The chart's ValidatingAdmissionPolicy (scheduler.annotationGuard) "
                   "closes this in the cluster (only the scheduler and node agents may write the key); the "
                   "agent alone cannot tell")
def test_to_allocate_edited_onto_a_device_another_pod_holds_is_refused(ready, kubelet, api):
    a = ready.inventory.devices[0].uuid
    full = ready.inventory.devices[0].partition.memory_mib
    holder = bound_pod(api, "holder", f"{a},NVIDIA,{full},100:;")
    kubelet.allocate(RESOURCE, [[kubelet.healthy(RESOURCE)[0]]])
    assert pod_annotations(api, "holder")["hami.io/bind-phase"] == "success"
    api.pods[("default", "holder")]["status"] = {"phase": "Running"}
    assert holder
    bound_pod(api, "editor", f"{a},NVIDIA,{full},100:;")  # the scheduler gave it another device; edited to a
    with pytest.raises(grpc.RpcError):
        kubelet.allocate(RESOURCE, [[kubelet.healthy(RESOURCE)[1]]])
