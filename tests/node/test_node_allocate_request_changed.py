"""A request annotation changed after the scheduler placed the pod: the agent allocates nothing.

Filter records the pod's request annotations (``hami-hal.io/placed-request``, written beside the devices it chose);
a ``use-gpuuuid`` / ``nouse-gpuuuid`` / policy annotation that differs at Allocate means the devices were checked
against another request, so the agent refuses: one line to the kubelet, the pod's event and the log,
``bind-phase: failed``, no container folder. Annotations the family does not read may change freely, and a pod
placed by HAMi's scheduler (no record) is allocated as HAMi does."""

from __future__ import annotations

import grpc
import pytest
from node_agent_fixtures import bound_pod, pod_annotations

from hami_hal.hami_compat import PLACED_REQUEST, encode_placed, request_pod_keys
from hami_hal.manager import Hal

RESOURCE = "nvidia.com/gpu"
USE = "nvidia.com/use-gpuuuid"
NOUSE = "nvidia.com/nouse-gpuuuid"


@pytest.fixture
def ready(agent, kubelet):
    assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 20)
    return agent


def placed(api, ready, name: str, request: dict[str, str]) -> dict:
    """A bound pod whose request annotations were ``request`` when the scheduler placed it (the extender's
    record, over every vendor's request keys as the scheduler knows them)."""
    uuid = ready.inventory.devices[0].uuid
    pod = bound_pod(api, name, f"{uuid},NVIDIA,1024,10:;")
    anns = api.pods[("default", name)]["metadata"]["annotations"]
    anns.update(request)
    anns[PLACED_REQUEST] = encode_placed(anns, request_pod_keys(Hal().vendors()))
    return pod


def edit(api, name: str, **changes: str | None) -> None:
    anns = api.pods[("default", name)]["metadata"]["annotations"]
    for key, value in changes.items():
        key = {"use": USE, "nouse": NOUSE}.get(key, key)
        if value is None:
            anns.pop(key, None)
        else:
            anns[key] = value


def refused(ready, kubelet, api, caplog, name: str, fragment: str) -> str:
    with pytest.raises(grpc.RpcError) as info:
        kubelet.allocate(RESOURCE, [kubelet.healthy(RESOURCE)[:1]])
    msg = info.value.details()
    assert fragment in msg and "nothing was allocated" in msg and "\n" not in msg, msg
    assert pod_annotations(api, name)["hami.io/bind-phase"] == "failed"
    assert [e["message"] for e in api.k8s_events if e["involvedObject"]["name"] == name] == [msg]
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [msg]
    assert ready.state.list() == [] and not list(ready.state.root.glob(f"0000-{name}_*"))
    assert pod_annotations(api, name)["hami.io/vgpu-devices-to-allocate"] != ";"  # nothing trimmed
    return msg


def allocated(kubelet, api, name: str) -> None:
    (resp,) = kubelet.allocate(RESOURCE, [kubelet.healthy(RESOURCE)[:1]]).container_responses
    assert resp.envs["CUDA_DEVICE_MEMORY_LIMIT_0"] == "1024m"
    assert pod_annotations(api, name)["hami.io/bind-phase"] == "success"


def test_a_selector_changed_after_placement_is_refused(ready, kubelet, api, caplog_node):
    placed(api, ready, "p", {USE: ready.inventory.devices[0].uuid})
    edit(api, "p", use="GPU-somewhere-else")
    msg = refused(ready, kubelet, api, caplog_node, "p",
                  f"metadata.annotations[\"{USE}\"] was changed to 'GPU-somewhere-else' after the scheduler placed")
    assert PLACED_REQUEST in msg


def test_a_selector_added_after_placement_is_refused(ready, kubelet, api, caplog_node):
    placed(api, ready, "p", {})
    edit(api, "p", nouse="GPU-x", **{"hami.io/gpu-scheduler-policy": "binpack"})
    refused(ready, kubelet, api, caplog_node, "p", "metadata.annotations[\"hami.io/gpu-scheduler-policy\"] was "
            "added (and 1 more) after the scheduler placed the pod")


def test_a_selector_removed_after_placement_is_refused(ready, kubelet, api, caplog_node):
    placed(api, ready, "p", {NOUSE: "GPU-bad"})
    edit(api, "p", nouse=None)
    refused(ready, kubelet, api, caplog_node, "p", f"metadata.annotations[\"{NOUSE}\"] was removed")


def test_a_malformed_record_is_one_line(ready, kubelet, api, caplog_node):
    placed(api, ready, "p", {})
    edit(api, "p", **{PLACED_REQUEST: '{"nvidia.com/use-gpuuuid": "not-a-digest"}'})
    with pytest.raises(grpc.RpcError) as info:
        kubelet.allocate(RESOURCE, [kubelet.healthy(RESOURCE)[:1]])
    msg = info.value.details()
    assert f'metadata.annotations["{PLACED_REQUEST}"]' in msg and "16 hex digits" in msg and "\n" not in msg
    assert pod_annotations(api, "p")["hami.io/bind-phase"] == "failed" and ready.state.list() == []


def test_an_unchanged_request_is_allocated(ready, kubelet, api):
    placed(api, ready, "p", {USE: ready.inventory.devices[0].uuid, "hami.io/gpu-scheduler-policy": "spread"})
    allocated(kubelet, api, "p")


def test_annotations_the_family_does_not_read_may_change(ready, kubelet, api):
    """Another vendor's selector and the pod's own annotations are no part of this family's request."""
    placed(api, ready, "p", {"cambricon.com/use-mlutype": "MLU370"})
    edit(api, "p", **{"cambricon.com/use-mlutype": "MLU290", "team": "a"})
    allocated(kubelet, api, "p")


def test_a_pod_without_a_record_is_allocated_as_hami_does(ready, kubelet, api):
    """HAMi's scheduler writes no record: its pods are allocated as before (the admission policy guards them)."""
    bound_pod(api, "p", f"{ready.inventory.devices[0].uuid},NVIDIA,1024,10:;")
    edit(api, "p", use="GPU-anything")
    allocated(kubelet, api, "p")
