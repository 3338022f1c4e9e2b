"""The ``hami.io/vgpu-node`` pod label (HAMi's monitor selects on it; the scheduler lists a node's pods by it) is
the pod author's to edit unless the chart's admission policy guards it. A tenant's own pod bound on one node,
relabelled to another, must not make every bind to that other node fail: the bind replay reads which node a pod
claims from its binding, else from its annotation, never from the label."""

from __future__ import annotations

from hami_scheduler.state import is_claim
from sched_fakeapi import FakeApiServer
from sched_testing import gpu_node, gpu_pod, start_stack

LABEL = "hami.io/vgpu-node"


def _place(api, s, name: str, node: str) -> None:
    """Filter and bind through the extender, as kube-scheduler calls it (the bind reads the fake API)."""
    pod = api.add_pod(gpu_pod(name, mem=4096, cores=25))
    out = s.extender.filter({"Pod": pod, "NodeNames": [node]})
    assert out.error == "" and out.node_names == [node], out.error
    assert s.extender.bind({"PodName": name, "PodNamespace": "default", "PodUID": f"uid-{name}", "Node": node}) == ""


def test_a_relabelled_pod_bound_elsewhere_does_not_block_binds_to_the_node_it_names():
    api = FakeApiServer().start()
    api.add_node(gpu_node("n1", gpus=1))
    api.add_node(gpu_node("n2", gpus=1))
    s = start_stack(api)
    try:
        _place(api, s, "mine", "n1")
        mine = api.pods[("default", "mine")]
        assert mine["metadata"]["labels"][LABEL] == "n1" and mine["spec"]["nodeName"] == "n1"
        with api.cond:  # the tenant edits its own pod's label (no admission guard on this cluster)
            mine["metadata"]["labels"][LABEL] = "n2"
        _place(api, s, "victim", "n2")  # before: "hami.io/vgpu-devices-allocated: 'GPU-n1-0' is not a device of node n2"
        assert api.pods[("default", "victim")]["spec"]["nodeName"] == "n2"
    finally:
        s.stop()


def test_is_claim_names_the_node_the_pod_is_bound_or_filtered_to():
    bound = {"spec": {"nodeName": "n1"}, "metadata": {"annotations": {"hami.io/bind-phase": "success",
                                                                     LABEL: "n1"}}}
    binding = {"spec": {}, "metadata": {"annotations": {"hami.io/bind-phase": "allocating", LABEL: "n1"}}}
    assert is_claim(bound) and is_claim(bound, "n1") and not is_claim(bound, "n2")
    assert is_claim(binding) and is_claim(binding, "n1") and not is_claim(binding, "n2")
    unnamed = {"spec": {}, "metadata": {"annotations": {"hami.io/bind-phase": "allocating"}}}
    assert is_claim(unnamed, "n2")  # no node named: counted where it is listed (the safe side of a replay)
    done = {"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}, "metadata": {}}
    assert not is_claim(done) and not is_claim(done, "n1")
