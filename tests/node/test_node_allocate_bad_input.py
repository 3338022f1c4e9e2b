"""Bad input at Allocate: one clear line in the log, the kubelet's error, bind-phase and an event;
nothing half-made, nothing allocated twice, and the agent keeps serving."""

from __future__ import annotations

import threading

import grpc
import pytest
from node_agent_fixtures import bound_pod, pod_annotations

RESOURCE = "nvidia.com/gpu"


@pytest.fixture
def ready(agent, kubelet):
    assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 20)
    return agent


def _ids(kubelet, n=1):
    return kubelet.healthy(RESOURCE)[:n]


def _err(kubelet, ids) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        kubelet.allocate(RESOURCE, [ids])
    return info.value


def _one_line_everywhere(api, caplog, name: str, err: grpc.RpcError, fragment: str) -> None:
    msg = err.details()
    assert fragment in msg and "\n" not in msg
    assert pod_annotations(api, name)["hami.io/bind-phase"] == "failed"
    assert [e["message"] for e in api.k8s_events if e["involvedObject"]["name"] == name] == [msg]
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [msg]


def test_device_this_node_lacks(ready, kubelet, api, caplog_node):
    bound_pod(api, "ghost", "GPU-not-here,NVIDIA,1024,10:;")
    err = _err(kubelet, _ids(kubelet))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    _one_line_everywhere(api, caplog_node, "ghost", err, "names device 'GPU-not-here', which node node1 does not have")
    assert pod_annotations(api, "ghost")["hami.io/vgpu-devices-to-allocate"] == "GPU-not-here,NVIDIA,1024,10:;"
    assert not list(ready.state.root.glob("0000-ghost_*"))


def test_malformed_annotation(ready, kubelet, api, caplog_node):
    uuid = ready.inventory.devices[0].uuid
    bound_pod(api, "bad", f"{uuid},NVIDIA,lots,10:;")
    err = _err(kubelet, _ids(kubelet))
    _one_line_everywhere(api, caplog_node, "bad", err, "'lots' must be an integer")
    assert "hami.io/vgpu-devices-to-allocate" in err.details()
    assert not list(ready.state.root.glob("0000-bad_*"))


def test_device_count_not_matched(ready, kubelet, api, caplog_node):
    a, b = (d.uuid for d in ready.inventory.devices)
    bound_pod(api, "two", f"{a},NVIDIA,1024,10:{b},NVIDIA,1024,10:;", gpus=2)
    err = _err(kubelet, _ids(kubelet, 1))
    _one_line_everywhere(api, caplog_node, "two", err, "device number not matched")


def test_unknown_device_id_from_kubelet(ready, kubelet, api):
    bound_pod(api, "p", f"{ready.inventory.devices[0].uuid},NVIDIA,1024,10:;")
    err = _err(kubelet, ["GPU-nope-0"])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown device ID" in err.details()
    assert pod_annotations(api, "p")["hami.io/bind-phase"] == "allocating"  # nothing touched


def test_no_pod_waiting(ready, kubelet):
    err = _err(kubelet, _ids(kubelet))
    assert "no binding pod found on node node1" in err.details()


def test_api_500_on_the_allocation_patch_leaves_nothing(ready, kubelet, api, caplog_node):
    uuid = ready.inventory.devices[0].uuid
    bound_pod(api, "p", f"{uuid},NVIDIA,1024,10:;")
    api.fail[("PATCH", r"/pods/p$")] = 1  # the allocation patch fails; the bind-phase=failed patch then works
    err = _err(kubelet, _ids(kubelet))
    _one_line_everywhere(api, caplog_node, "p", err, "API server answered 500")
    assert pod_annotations(api, "p")["hami.io/vgpu-devices-to-allocate"] == f"{uuid},NVIDIA,1024,10:;"
    assert not ready.state.path("0000-p", "main").exists() and ready.state.list() == []


def test_api_500_on_the_pod_list(ready, kubelet, api, caplog_node):
    bound_pod(api, "p", f"{ready.inventory.devices[0].uuid},NVIDIA,1024,10:;")
    api.fail[("GET", r"/api/v1/pods")] = 1
    err = _err(kubelet, _ids(kubelet))
    assert "500" in err.details() and "\n" not in err.details()
    assert pod_annotations(api, "p")["hami.io/bind-phase"] == "allocating"
    # the agent is still serving: the kubelet's retry succeeds
    (resp,) = kubelet.allocate(RESOURCE, [_ids(kubelet)]).container_responses
    assert resp.envs["CUDA_DEVICE_MEMORY_LIMIT_0"] == "1024m"
    assert pod_annotations(api, "p")["hami.io/bind-phase"] == "success"


def test_two_pods_racing_allocate(ready, kubelet, api):
    a, b = (d.uuid for d in ready.inventory.devices)
    bound_pod(api, "first", f"{a},NVIDIA,1024,10:;", bind_time=100)
    bound_pod(api, "second", f"{b},NVIDIA,2048,20:;", bind_time=200)
    results: list = []

    def call(ids):
        try:
            results.append(kubelet.allocate(RESOURCE, [ids]).container_responses[0])
        except grpc.RpcError as err:
            results.append(err)

    ids = kubelet.healthy(RESOURCE)
    threads = [threading.Thread(target=call, args=([i],)) for i in (ids[0], ids[10])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(r, grpc.RpcError) for r in results), results
    assert sorted(r.envs["NVIDIA_VISIBLE_DEVICES"] for r in results) == sorted([a, b])
    for name in ("first", "second"):
        anns = pod_annotations(api, name)
        assert anns["hami.io/bind-phase"] == "success" and anns["hami.io/vgpu-devices-to-allocate"] == ";"
    assert sorted(r.pod for r, _ in ready.state.list()) == ["first", "second"]
    # a third call finds nothing left: nothing is allocated twice
    assert "no binding pod found" in _err(kubelet, [ids[1]]).details()


def _two_container_pod(api, name, first: str, second: str) -> None:
    pod = bound_pod(api, name, f"{first};{second};")
    pod["spec"]["containers"].append({"name": "side", "resources": {}})
    api.pods[("default", name)]["spec"] = pod["spec"]


def test_one_call_for_two_containers(ready, kubelet, api):
    a, b = (d.uuid for d in ready.inventory.devices)
    _two_container_pod(api, "duo", f"{a},NVIDIA,1024,10:", f"{b},NVIDIA,2048,20:")
    ids = kubelet.healthy(RESOURCE)
    r1, r2 = kubelet.allocate(RESOURCE, [[ids[0]], [ids[10]]]).container_responses
    assert (r1.envs["NVIDIA_VISIBLE_DEVICES"], r2.envs["NVIDIA_VISIBLE_DEVICES"]) == (a, b)
    assert r2.envs["CUDA_DEVICE_MEMORY_LIMIT_0"] == "2048m"
    anns = pod_annotations(api, "duo")
    assert anns["hami.io/vgpu-devices-to-allocate"] == ";;" and anns["hami.io/bind-phase"] == "success"
    assert sorted(r.container for r, _ in ready.state.list()) == ["main", "side"]


def test_second_container_failing_undoes_the_first(ready, kubelet, api, caplog_node):
    a = ready.inventory.devices[0].uuid
    _two_container_pod(api, "half", f"{a},NVIDIA,1024,10:", "GPU-elsewhere,NVIDIA,1024,10:")
    ids = kubelet.healthy(RESOURCE)
    err = _err_many(kubelet, [[ids[0]], [ids[10]]])
    _one_line_everywhere(api, caplog_node, "half", err, "'GPU-elsewhere'")
    assert ready.state.list() == [] and not list(ready.state.root.glob("0000-half_*"))
    assert pod_annotations(api, "half")["hami.io/vgpu-devices-to-allocate"].startswith(a)


def _err_many(kubelet, containers) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        kubelet.allocate(RESOURCE, containers)
    return info.value


def test_pod_filtered_for_another_node_is_not_taken(ready, kubelet, api):
    pod = bound_pod(api, "other", f"{ready.inventory.devices[0].uuid},NVIDIA,1024,10:;")
    pod["metadata"]["annotations"]["hami.io/vgpu-node"] = "node2"
    api.pods[("default", "other")]["metadata"]["annotations"] = pod["metadata"]["annotations"]
    assert "no binding pod found" in _err(kubelet, _ids(kubelet)).details()
    assert pod_annotations(api, "other")["hami.io/bind-phase"] == "allocating"


def test_oversized_request_is_refused(ready, kubelet):
    err = _err_many(kubelet, [[i] for i in kubelet.healthy(RESOURCE)[:1]] * 300)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "over the bound" in err.details()


def test_conflict_from_an_unrelated_pod_update_is_retried(ready, kubelet, api, monkeypatch):
    uuid = ready.inventory.devices[0].uuid
    bound_pod(api, "busy", f"{uuid},NVIDIA,1024,10:;")
    real = ready.api.patch_pod_annotations
    calls = []

    def racy(ns, name, annotations, resource_version=None):
        if not calls:  # the kubelet updates the pod status just before our patch lands
            api.pods[("default", "busy")].setdefault("status", {})["conditions"] = [{"type": "PodScheduled"}]
            api.pods[("default", "busy")]["metadata"]["resourceVersion"] = "999999"
        calls.append(resource_version)
        return real(ns, name, annotations, resource_version)

    monkeypatch.setattr(ready.api, "patch_pod_annotations", racy)
    (resp,) = kubelet.allocate(RESOURCE, [_ids(kubelet)]).container_responses
    assert resp.envs["NVIDIA_VISIBLE_DEVICES"] == uuid and calls[1] == "999999"
    assert pod_annotations(api, "busy")["hami.io/bind-phase"] == "success"


def test_conflict_on_the_allocation_itself_fails_cleanly(ready, kubelet, api, monkeypatch):
    a, b = (d.uuid for d in ready.inventory.devices)
    bound_pod(api, "moved", f"{a},NVIDIA,1024,10:;")
    real = ready.api.patch_pod_annotations

    def rescheduled(ns, name, annotations, resource_version=None):
        if "hami.io/bind-phase" not in annotations or annotations["hami.io/bind-phase"] != "failed":
            pod = api.pods[("default", "moved")]
            pod["metadata"]["annotations"]["hami.io/vgpu-devices-to-allocate"] = f"{b},NVIDIA,1024,10:;"
            pod["metadata"]["resourceVersion"] = "888888"
        return real(ns, name, annotations, resource_version)

    monkeypatch.setattr(ready.api, "patch_pod_annotations", rescheduled)
    err = _err(kubelet, _ids(kubelet))
    assert "changed while the pod was being allocated" in err.details()
    assert ready.state.list() == []
