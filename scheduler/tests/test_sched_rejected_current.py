"""The rejected list (the ``hami_scheduler_rejected_objects`` gauge) is current state, not history.

On main a node refused once stayed listed after its annotation was fixed, and a deleted node or pod stayed listed
forever: the gauge never went down, and creating and deleting pods with a bad allocation annotation grew the list
without bound."""

from __future__ import annotations

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
    pod both refused counted once; n1 fixed (or deleted) dropped the pod's refusal; and a re-list read pod
    ``node/ghost`` as a node the API no longer lists and forgot it while it was still refused."""
    api = FakeApiServer().start()
    api.add_node(gpu_node("n1", gpus=2))
    api.add_pod(gpu_pod("n1", ns="node", annotations=BAD_ALLOC))
    api.add_pod(gpu_pod("ghost", ns="node", annotations=BAD_ALLOC))
    stack = start_stack(api, watch=False)
    try:
        cluster = stack.cluster
        pods = {"pod:node/n1", "pod:node/ghost"}
        assert set(cluster.rejected) == pods
        with api.cond:  # node n1 refused too: three objects refused, three counted
            api.nodes["n1"]["metadata"]["annotations"][HAL_INVENTORY] = "{not json"
        sync(stack.kube, cluster)
        assert set(cluster.rejected) == pods | {"node:n1"}
        with urllib.request.urlopen(stack.server.url + "/metrics") as r:
            assert "hami_scheduler_rejected_objects 3.0" in r.read().decode()
        with api.cond:  # n1 fixed: only its own entry goes
            del api.nodes["n1"]["metadata"]["annotations"][HAL_INVENTORY]
        sync(stack.kube, cluster)
        assert set(cluster.rejected) == pods
        cluster.remove_node("n1")  # n1 deleted: the pods' refusals are theirs
        assert set(cluster.rejected) == pods
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
