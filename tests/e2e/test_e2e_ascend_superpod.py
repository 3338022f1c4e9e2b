"""A 910C pod that skipped the admission webhook stays Pending with one reason, through a real kube-scheduler.

No webhook runs here, as for a pod labelled ``hami.io/webhook=ignore``: its limit of 1 is what the kubelet would ask
for, and the extender (the installed plugins' admission, as the chart runs it) refuses every node with one short line
instead of assigning a die pair that Allocate would refuse; an odd count of 3 is refused by the admission itself. Both
come back in FailedAndUnresolvableNodes, so kube-scheduler reports a fit error whose nodes preemption cannot help (not
an extender error it retries with backoff). A pod asking for the pair the webhook writes is placed.
"""

from __future__ import annotations

import pytest

from hami_hal.hami_compat import HAL_INVENTORY
from hami_hal.manager import Hal
from hami_hal.testing.helpers import sim_inventory

pytest.importorskip("hami_plugins_ascend.plugin", exc_type=ImportError)

C = "huawei.com/Ascend910C"
TO_ALLOCATE = "hami.io/Ascend910C-devices-to-allocate"


def _npu_pod(name: str, count: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"schedulerName": "hami-scheduler", "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": "npu:fake", "resources": {"limits": {C: count}}}]}}


def test_a_910c_pod_that_skipped_the_webhook_stays_pending_with_one_reason(stack, deadline):
    hal = Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"])
    name = f"{stack.ns}-npu"[:63]
    inv = sim_inventory(hal, "ascend-16x910c", name)
    stack.kubelet.register({"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": name, "annotations": {HAL_INVENTORY: inv.model_dump_json(by_alias=True)}}}, {C: "16"})
    stack.nodes.append(name)
    _, port = stack.start_extender(installed=True)
    stack.start_scheduler(port, resources=[C, f"{C}-memory", f"{C}-core"])
    stack.create(_npu_pod("skipped", "1"))
    stack.create(_npu_pod("odd", "3"))
    stack.create(_npu_pod("pair", "2"))

    def events(pod: str, reason: str) -> list[str]:
        return [e["message"] for e in stack.events(pod) if e["reason"] == reason]

    for pod, why in (("skipped", f"container main: {C}: 1 skipped admission, which raises it to 2 (whole devices go "
                                 "in multiples of 2)"),
                     ("odd", f"{C}: 3 must be 1 or even on a superPod chip (whole cards come in die pairs)")):
        ours = deadline(lambda pod=pod: events(pod, "FilteringFailed"), 60, f"FilteringFailed on {pod}")
        assert why in ours[0] and name in ours[0], ours
        sched = deadline(lambda pod=pod: events(pod, "FailedScheduling"), 60, f"kube-scheduler's FailedScheduling on {pod}")
        # a fit error, not an extender error (kube-scheduler's "0/1 nodes"), and the node UnschedulableAndUnresolvable
        assert sched[0].startswith(f"0/1 nodes are available: 1 {why}"), sched
        assert "Preemption is not helpful for scheduling" in sched[0], sched
    placed = deadline(lambda: (p := stack.core.read_namespaced_pod("pair", stack.ns)).spec.node_name and p, 60,
                      "the die pair bound")
    assert placed.spec.node_name == name and len(placed.metadata.annotations[TO_ALLOCATE].split(":")) == 3
    skipped = stack.core.read_namespaced_pod("skipped", stack.ns)
    assert skipped.spec.node_name is None and TO_ALLOCATE not in (skipped.metadata.annotations or {})
