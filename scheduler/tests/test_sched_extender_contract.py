"""Extender wire contract (kubernetes-contracts.md §1) against the fake API server and the real client."""

from __future__ import annotations

import copy
import json
import urllib.request

import pytest
from sched_fakeapi import FakeApiServer
from sched_testing import SEED_POD, gpu_node, gpu_pod, start_stack, synced_stack


def post(stack, verb: str, body) -> dict:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"{stack.server.url}/{verb}", data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as resp:
            return {"status": resp.status, **({"body": json.loads(resp.read())})}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": json.loads(exc.read() or b"null")}


@pytest.fixture
def stack():
    with synced_stack(gpu_node("node1", gpus=2), gpu_node("node2", gpus=4)) as s:
        yield s


def test_seed_pod_end_to_end(stack):
    pod = stack.api.add_pod(SEED_POD)
    out = post(stack, "filter", {"Pod": pod, "Nodes": None, "NodeNames": ["node1", "node2", "ghost"]})
    assert out["status"] == 200
    body = out["body"]
    assert set(body) == {"Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"}
    assert body["Error"] == "" and len(body["NodeNames"]) == 1
    chosen = body["NodeNames"][0]
    assert body["FailedNodes"]["ghost"] == "node unregistered"
    anns = stack.api.pods[("default", "gpu-pod")]["metadata"]["annotations"]
    alloc = anns["hami.io/vgpu-devices-allocated"]
    assert anns["hami.io/vgpu-devices-to-allocate"] == alloc
    assert anns["hami.io/vgpu-node"] == chosen
    # two distinct GPUs, 10240 MiB and 30 % each, one container segment
    devs = alloc.rstrip(";").rstrip(":").split(":")
    assert len(devs) == 2 and len({d.split(",")[0] for d in devs}) == 2
    assert all(d.split(",")[1:] == ["NVIDIA", "10240", "30"] for d in devs)
    res = post(stack, "bind", {"PodName": "gpu-pod", "PodNamespace": "default", "PodUID": "uid-gpu-pod",
                               "Node": chosen})
    assert res["body"] == {"Error": ""}
    stored = stack.api.pods[("default", "gpu-pod")]
    assert stored["spec"]["nodeName"] == chosen
    assert stored["metadata"]["annotations"]["hami.io/bind-phase"] == "allocating"
    assert "hami.io/mutex.lock" not in stack.api.nodes[chosen]["metadata"]["annotations"]
    assert stack.api.bindings == [("default", "gpu-pod", chosen)]


def test_lower_case_keys_accepted(stack):
    pod = stack.api.add_pod(gpu_pod("p1"))
    out = post(stack, "filter", {"pod": pod, "nodenames": ["node1"]})
    assert out["body"]["NodeNames"] == ["node1"]
    out = post(stack, "prioritize", {"pod": pod, "nodeNames": ["node1", "node2"]})
    assert [h["Host"] for h in out["body"]] == ["node1", "node2"]
    assert all(0 <= h["Score"] <= 10 for h in out["body"])
    res = post(stack, "bind", {"podname": "p1", "podnamespace": "default", "poduid": "uid-p1", "node": "node1"})
    assert res["body"]["Error"] == ""


def test_failed_nodes_carry_hami_reasons(stack):
    pod = stack.api.add_pod(gpu_pod("big", gpus=1, mem=50000, cores=10))
    body = post(stack, "filter", {"Pod": pod, "NodeNames": ["node1", "node2"]})["body"]
    assert body["NodeNames"] == []
    assert body["FailedNodes"]["node1"].endswith("(2/2 CardInsufficientMemory)")
    assert "4/4 CardInsufficientMemory" in body["FailedNodes"]["node2"]
    three = stack.api.add_pod(gpu_pod("three", gpus=3))
    body = post(stack, "filter", {"Pod": three, "NodeNames": ["node1"]})["body"]
    assert "NodeInsufficientDevice" in body["FailedNodes"]["node1"]


def test_pod_without_devices_passes_all_nodes(stack):
    pod = stack.api.add_pod({"metadata": {"name": "plain", "namespace": "default"},
                             "spec": {"containers": [{"name": "c"}]}})
    body = post(stack, "filter", {"Pod": pod, "NodeNames": ["node1", "node2"]})["body"]
    assert body["NodeNames"] == ["node1", "node2"] and body["FailedNodes"] == {}


def test_full_nodes_dry_run_writes_nothing(stack):
    pod = stack.api.add_pod(gpu_pod("dry"))
    nodes = {"items": [stack.api.nodes["node1"], stack.api.nodes["node2"]]}
    body = post(stack, "filter", {"Pod": pod, "Nodes": nodes})["body"]
    assert len(body["NodeNames"]) == 1
    assert "hami.io/vgpu-node" not in stack.api.pods[("default", "dry")]["metadata"]["annotations"]
    assert stack.cluster.pods == {}


def test_malformed_requests_change_nothing(stack):
    before = stack.cluster.snapshot()
    bad = stack.api.add_pod(gpu_pod("bad", gpus=1, mem=1024, cores=150))
    body = post(stack, "filter", {"Pod": bad, "NodeNames": ["node1"]})["body"]
    # the pod alone is refused: every node unresolvable with the field and the value, no Error (kube-scheduler's backoff)
    assert body["NodeNames"] == [] and body["Error"] == "" and body["FailedNodes"] == {}
    (why,) = body["FailedAndUnresolvableNodes"].values()
    assert set(body["FailedAndUnresolvableNodes"]) == {"node1"} and "150" in why and "gpucores" in why
    assert post(stack, "filter", b"{not json")["status"] == 400
    assert post(stack, "filter", {"Pod": gpu_pod("x"), "NodeNames": "node1"})["body"]["Error"].startswith("NodeNames")
    assert post(stack, "bind", {"PodName": "", "PodNamespace": "default", "Node": "node1"})["body"]["Error"]
    assert stack.cluster.snapshot() == before


def test_health_ready_metrics(stack):
    for path, text in (("/healthz", "ok"), ("/readyz", "ok")):
        with urllib.request.urlopen(stack.server.url + path) as r:
            assert r.read().decode() == text
    stack.api.add_pod(gpu_pod("m"))
    post(stack, "filter", {"Pod": stack.api.pods[("default", "m")], "NodeNames": ["node1"]})
    with urllib.request.urlopen(stack.server.url + "/metrics") as r:
        text = r.read().decode()
    assert 'hami_scheduler_extender_requests_total{result="fit",verb="filter"} 1.0' in text
    assert "hami_scheduler_nodes 2.0" in text


def test_stale_cache_second_scheduler_cannot_double_allocate():
    """Two extenders, each with its own cache, one API: the bind-time check under the node lock wins."""
    api = FakeApiServer().start()
    api.add_node(gpu_node("solo", gpus=1, count=10))
    a = start_stack(api, watch=False)
    b = start_stack(api, watch=False)  # b never hears about a's decisions
    try:
        p1 = api.add_pod(gpu_pod("p1", mem=30000, cores=60))
        p2 = api.add_pod(gpu_pod("p2", mem=30000, cores=60))
        assert post(a, "filter", {"Pod": p1, "NodeNames": ["solo"]})["body"]["NodeNames"] == ["solo"]
        assert post(b, "filter", {"Pod": p2, "NodeNames": ["solo"]})["body"]["NodeNames"] == ["solo"]
        ok = post(a, "bind", {"PodName": "p1", "PodNamespace": "default", "PodUID": "uid-p1", "Node": "solo"})
        assert ok["body"]["Error"] == ""
        res = post(b, "bind", {"PodName": "p2", "PodNamespace": "default", "PodUID": "uid-p2", "Node": "solo"})
        assert "over-commit" in res["body"]["Error"]
        assert "hami.io/vgpu-devices-allocated" not in api.pods[("default", "p2")]["metadata"]["annotations"]
        assert (api.pods[("default", "p2")].get("spec") or {}).get("nodeName") is None
        assert [x[1] for x in api.bindings] == ["p1"]
    finally:
        a.stop()
        b.stop()


def test_node_lock_retries_on_conflict_and_respects_holder(stack):
    """A stale resourceVersion gets 409 from the API; the lock re-reads and retries."""
    real_get = stack.kube.get_node
    calls = {"n": 0}

    def stale_get(name):
        obj = real_get(name)
        calls["n"] += 1
        if calls["n"] == 1:  # someone writes the node between our read and our patch
            stack.api.add_node(copy.deepcopy(stack.api.nodes[name]))
        return obj

    stack.kube.get_node = stale_get
    stack.kube.lock_node("node1", "default", "p", 300)
    stack.kube.get_node = real_get
    assert stack.api.conflicts == 1
    assert stack.api.nodes["node1"]["metadata"]["annotations"]["hami.io/mutex.lock"].endswith(",default,p")
    from hami_hal.errors import AllocationError

    stack.api.add_pod(gpu_pod("p"))  # the holder exists, so the lock is live
    with pytest.raises(AllocationError, match="has been locked"):
        stack.kube.lock_node("node1", "default", "other", 300)
    stack.kube.unlock_node("node1", "default", "p")
    assert "hami.io/mutex.lock" not in stack.api.nodes["node1"]["metadata"]["annotations"]


def test_prioritize_ranks_like_filter(stack):
    first = stack.api.add_pod(gpu_pod("first", mem=20000, cores=50))
    chosen = post(stack, "filter", {"Pod": first, "NodeNames": ["node1", "node2"]})["body"]["NodeNames"][0]
    other = "node2" if chosen == "node1" else "node1"
    nxt = stack.api.add_pod(gpu_pod("next", mem=1000, cores=5))
    body = post(stack, "prioritize", {"Pod": nxt, "NodeNames": ["node1", "node2", "ghost"]})["body"]
    scores = {h["Host"]: h["Score"] for h in body}
    assert scores[chosen] == 10 and scores[other] == 1 and scores["ghost"] == 0  # binpack: fuller first
    huge = stack.api.add_pod(gpu_pod("huge", mem=50000, cores=10))
    body = post(stack, "prioritize", {"Pod": huge, "NodeNames": ["node1", "node2"]})["body"]
    assert all(h["Score"] == 0 for h in body)
