"""Restart recovery and watch-driven updates: the cache is rebuilt from the API with nothing lost."""

from __future__ import annotations

import time

from hami_scheduler.kube import Kube, api_client, sync
from hami_scheduler.state import ClusterState
from sched_fakeapi import FakeApiServer
from sched_testing import NVIDIA, gpu_node, gpu_pod, start_stack


def _wait(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_restart_rebuilds_identical_state():
    api = FakeApiServer().start()
    for i in range(3):
        api.add_node(gpu_node(f"n{i}", gpus=4))
    s = start_stack(api, watch=False)
    try:
        for i in range(8):
            pod = api.add_pod(gpu_pod(f"p{i}", gpus=1 + i % 2, mem=2048 * (1 + i % 3), cores=10 + i))
            res = s.extender.filter({"Pod": pod, "NodeNames": ["n0", "n1", "n2"]})
            assert res.node_names, res.failed
            if i % 2 == 0:  # half are bound, half only reserved by filter
                assert s.extender.bind({"PodName": f"p{i}", "PodNamespace": "default", "Node": res.node_names[0]}) == ""
        before = s.cluster.snapshot()
        assert len(before["pods"]) == 8
        # a "restarted" scheduler: fresh state from the API only
        fresh = ClusterState([NVIDIA])
        sync(Kube(api_client(api.url)), fresh)
        assert fresh.snapshot() == before
    finally:
        s.stop()


def test_watch_tracks_nodes_and_pods():
    api = FakeApiServer().start()
    api.add_node(gpu_node("a", gpus=2))
    s = start_stack(api, watch=True)
    try:
        api.add_node(gpu_node("b", gpus=2))
        assert _wait(lambda: "b" in s.cluster.nodes)
        # a pod placed by another scheduler appears through the watch and is counted
        pod = gpu_pod("foreign", mem=1000, cores=5)
        pod["metadata"]["annotations"] = {"hami.io/vgpu-node": "b",
                                          "hami.io/vgpu-devices-allocated": "GPU-b-0,NVIDIA,1000,5:;"}
        pod["spec"]["nodeName"] = "b"
        api.add_pod(pod)
        assert _wait(lambda: "default/foreign" in s.cluster.pods)
        assert s.cluster.nodes["b"].state.usage("GPU-b-0").used_memory_mib == 1000
        api.delete_pod("default", "foreign")
        assert _wait(lambda: "default/foreign" not in s.cluster.pods)
        assert s.cluster.nodes["b"].state.usage("GPU-b-0").used_memory_mib == 0
        # finished pods give their slices back
        api.add_pod(pod)
        assert _wait(lambda: "default/foreign" in s.cluster.pods)
        with api.cond:
            api.pods[("default", "foreign")]["status"] = {"phase": "Succeeded"}
            api._bump("pods", "MODIFIED", api.pods[("default", "foreign")])
        assert _wait(lambda: "default/foreign" not in s.cluster.pods)
    finally:
        s.stop()
