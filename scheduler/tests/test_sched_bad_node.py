"""One node with a hostile register annotation is rejected whole and counted; the rest keeps scheduling.

The caps are core's HAMi codec's (hami_hal/hami_compat/limits.py); this test is the end-to-end check
that a node breaking them never reaches the prefilter (on main b05f243 `devmem: 1e20` overflowed its
int64 arrays and stopped every filter)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from sched_fakeapi import FakeApiServer
from sched_testing import gpu_node, gpu_pod, start_stack

REGISTER = "hami.io/node-nvidia-register"


def _hostile(name: str, **field) -> dict:
    node = gpu_node(name, gpus=2)
    devs = json.loads(node["metadata"]["annotations"][REGISTER])
    devs[0].update(field)
    node["metadata"]["annotations"][REGISTER] = json.dumps(devs)
    return node


@pytest.mark.parametrize("field", [{"devmem": 10**20}, {"count": 2**40}, {"devcore": -(2**70)}, {"devmem": "1e20"}])
@pytest.mark.parametrize("watch", [False, True], ids=["at-sync", "via-watch"])
def test_bad_node_is_rejected_whole_and_the_cluster_keeps_scheduling(field, watch):
    api = FakeApiServer().start()
    api.add_node(gpu_node("good", gpus=2))
    if not watch:
        api.add_node(_hostile("evil", **field))
    stack = start_stack(api, watch=True)
    try:
        if watch:
            api.add_node(_hostile("evil", **field))
            for _ in range(100):
                if "node:evil" in stack.cluster.rejected:
                    break
                time.sleep(0.05)
        assert "evil" not in stack.cluster.nodes
        assert any(k.startswith("node:evil") for k in stack.cluster.rejected), stack.cluster.rejected
        with urllib.request.urlopen(stack.server.url + "/metrics") as r:
            text = r.read().decode()
        assert "hami_scheduler_rejected_objects 1.0" in text
        pod = api.add_pod(gpu_pod("ok"))
        out = stack.extender.filter({"Pod": pod, "NodeNames": ["good", "evil"]})
        assert out.error == "" and out.node_names == ["good"]
        assert stack.extender.bind({"PodName": "ok", "PodNamespace": "default", "PodUID": "uid-ok",
                                    "Node": "good"}) == ""
    finally:
        stack.stop()
