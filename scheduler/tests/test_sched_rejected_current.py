"""The rejected list (the ``hami_scheduler_rejected_objects`` gauge) is current state, not history.

On main a node refused once stayed listed after its annotation was fixed, and a deleted node or pod stayed listed
forever: the gauge never went down, and creating and deleting pods with a bad allocation annotation grew the list
without bound."""

from __future__ import annotations

import json
import time
import urllib.request

from hami_scheduler.kube import sync
from hami_scheduler.refusals import node_key, pod_key, rejected_object
from sched_fakeapi import FakeApiServer
from sched_testing import gpu_node, gpu_pod, start_stack

from hami_hal.hami_compat import HAL_INVENTORY

BAD_ALLOC = {"hami.io/vgpu-node": "n1", "hami.io/vgpu-devices-allocated": "GPU-elsewhere,NVIDIA,4096,25:;"}


def _wait(pred, what: str) -> None:
    for _ in range(250):
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"not reached: {what}")


def test_through_the_watch_a_fixed_or_deleted_object_leaves_the_rejected_list():
    api = FakeApiServer().start()
    api.add_node(gpu_node("n1", gpus=2))
    stack = start_stack(api, watch=True)
    rejected = stack.cluster.rejected
    try:
        with api.cond:
            api.nodes["n1"]["metadata"]["annotations"][HAL_INVENTORY] = "{not json"
            api._bump("nodes", "MODIFIED", api.nodes["n1"])
        _wait(lambda: "node:n1" in rejected, "node/n1 refused")
        with api.cond:
            del api.nodes["n1"]["metadata"]["annotations"][HAL_INVENTORY]  # fixed: the register annotation again
            api._bump("nodes", "MODIFIED", api.nodes["n1"])
        _wait(lambda: "node:n1" not in rejected, f"node/n1 no longer refused: {rejected}")
        for i in range(5):  # bad pods come and go: none stays listed
            api.add_pod(gpu_pod(f"p{i}", annotations=BAD_ALLOC))
            _wait(lambda i=i: f"pod:default/p{i}" in rejected, f"default/p{i} refused")
            api.delete_pod("default", f"p{i}")
            _wait(lambda i=i: f"pod:default/p{i}" not in rejected, f"default/p{i} forgotten: {rejected}")
        assert rejected == {}
    finally:
        stack.stop()


def test_a_relist_forgets_the_objects_the_api_no_longer_has_and_keeps_the_others():
    api = FakeApiServer().start()
    api.add_node(gpu_node("n1", gpus=2))
    api.add_node(gpu_node("n2", gpus=2))
    api.add_pod(gpu_pod("gone", annotations=BAD_ALLOC))
    api.add_pod(gpu_pod("kept", annotations=BAD_ALLOC))
    stack = start_stack(api, watch=False)
    try:
        cluster = stack.cluster
        cluster.rejected["node:n2"] = "refused earlier"
        cluster.rejected["node:n2/allocatable"] = "refused earlier"
        assert {"pod:default/gone", "pod:default/kept"} <= set(cluster.rejected)
        with api.cond:
            del api.nodes["n2"]
            api.pods.pop(("default", "gone"))
        sync(stack.kube, cluster)
        assert set(cluster.rejected) == {"pod:default/kept"}
        cluster.upsert_pod(gpu_pod("kept"))  # its bad allocation removed: nothing refused
        assert cluster.rejected == {}
    finally:
        stack.stop()


def test_a_pod_in_a_namespace_named_node_is_never_read_as_a_node():
    """On main the keys were ``node/<name>`` and ``<ns>/<name>``: pod ``node/n1`` had node n1's key. Node n1 and that
    pod both refused counted once, and n1 fixed or deleted (a watch event) dropped the pod's refusal. The counts are the
    ``hami_scheduler_rejected_objects`` gauge: main counts 1 while both are refused, then 0 (the pod still refused)
    after n1 is fixed and after n1 is deleted."""
    api = FakeApiServer().start()
    api.add_node(gpu_node("n1", gpus=2))
    api.add_pod(gpu_pod("n1", ns="node", annotations=BAD_ALLOC))
    stack = start_stack(api, watch=False)
    cluster = stack.cluster

    def gauge() -> float:
        with urllib.request.urlopen(stack.server.url + "/metrics") as r:
            line = next(ln for ln in r.read().decode().splitlines() if ln.startswith("hami_scheduler_rejected_objects "))
        return float(line.split()[1])

    try:
        assert set(cluster.rejected) == {"pod:node/n1"} and gauge() == 1
        good = json.loads(json.dumps(api.nodes["n1"]))
        bad = json.loads(json.dumps(good))
        bad["metadata"]["annotations"][HAL_INVENTORY] = "{not json"
        with api.cond:  # node n1 refused too (the re-list records it): two objects refused, two counted
            api.nodes["n1"] = bad
        sync(stack.kube, cluster)
        assert gauge() == 2 and set(cluster.rejected) == {"pod:node/n1", "node:n1"}
        cluster.upsert_node(good)  # the watch: n1 fixed; only its own entry goes
        assert gauge() == 1 and set(cluster.rejected) == {"pod:node/n1"}
        cluster.remove_node("n1")  # the watch: n1 deleted; the pod's refusal is the pod's
        assert gauge() == 1 and set(cluster.rejected) == {"pod:node/n1"}
    finally:
        stack.stop()


def test_a_relist_forgets_a_deleted_pod_in_a_namespace_named_node_while_that_node_is_listed():
    """The pod's DELETED event was missed; the re-list no longer lists the pod, so its refusal goes although node n1
    is listed (``forget_absent`` reads the kind from the key). On main this passes only by the other collision: the
    re-list's upsert of node n1 dropped ``node/n1``, whichever object it belonged to."""
    api = FakeApiServer().start()
    api.add_node(gpu_node("n1", gpus=2))
    api.add_pod(gpu_pod("n1", ns="node", annotations=BAD_ALLOC))
    stack = start_stack(api, watch=False)
    try:
        assert len(stack.cluster.rejected) == 1
        with api.cond:
            api.pods.pop(("node", "n1"))
        sync(stack.kube, stack.cluster)
        assert stack.cluster.rejected == {}
    finally:
        stack.stop()


def test_rejected_keys_are_kind_prefixed_and_no_name_reaches_the_next_part():
    assert pod_key("node/n1") != node_key("n1") and pod_key("node/n1").startswith("pod:")
    assert node_key("a/families") != node_key("a", "families")  # a '/' in a name cannot make a part
    assert pod_key("ns/a/resources") != pod_key("ns/a", "resources")
    for key, obj in ((node_key("n1", "allocatable"), ("node", "n1")), (pod_key("node/n1", "resources"),
                                                                       ("pod", "node/n1")),
                     (node_key("a/b:c"), ("node", "a/b:c")), (pod_key("ns/x/y"), ("pod", "ns/x/y"))):
        assert rejected_object(key) == obj, key
