"""The rejected list (the ``hami_scheduler_rejected_objects`` gauge) is current state, not history.

On main a node refused once stayed listed after its annotation was fixed, and a deleted node or pod stayed listed
forever: the gauge never went down, and creating and deleting pods with a bad allocation annotation grew the list
without bound."""

from __future__ import annotations

import time

from hami_scheduler.kube import sync
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
