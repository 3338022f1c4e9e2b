"""A malformed pod stays Pending with one reason through a real kube-scheduler, and is not asked about again and again.

The pod asks for ``nvidia.com/gpucores: 150`` (the API server takes any whole number for an extended resource; the
request parser refuses it: 0..100). The extender answers every node in ``FailedAndUnresolvableNodes``, so
kube-scheduler reports a fit error whose nodes preemption cannot help and parks the pod with the unschedulable ones.
On main (90b9972) the same pod got an extender ``Error``, which kube-scheduler retries with backoff for as long as the
pod exists (podMaxBackoffSeconds is 2 in this control plane, 10 by default): 5 Filter calls in 10 s there, at most 1
here (docs/results/2026-12-06-e2e-pod-refused.md has the figures and the command).
"""

from __future__ import annotations

import os
import time

from k8s_stack import gpu_pod

WHY = 'spec.containers[0].resources.limits["nvidia.com/gpucores"]: 150 must be between 0 and 100'
#: Seconds the Filter calls are counted for, after kube-scheduler's first FailedScheduling.
WINDOW_S = 10.0


def test_a_malformed_pod_gets_failed_scheduling_with_the_reason_and_no_backoff_retries(stack, deadline):
    (node,) = stack.add_nodes(1)
    _, port = stack.start_extender()
    stack.start_scheduler(port)
    stack.create(gpu_pod("bad", cores=150))

    def failed() -> list[str]:
        return [e["message"] for e in stack.events("bad") if e["reason"] == "FailedScheduling"]

    sched = deadline(failed, 60, "kube-scheduler's FailedScheduling on the malformed pod", explain=stack.describe)
    first = stack.metric_sum(port, "hami_scheduler_extender_requests_total", verb="filter")
    time.sleep(WINDOW_S)
    calls = stack.metric_sum(port, "hami_scheduler_extender_requests_total", verb="filter") - first
    if os.environ.get("HAMI_E2E_TIMING"):
        print(f"[pod-refused] filter calls in {WINDOW_S:g} s after the first FailedScheduling: {calls:g}; "
              f"first message: {sched[0]}")
    # a fit error (kube-scheduler's "0/1 nodes"), the node UnschedulableAndUnresolvable, not an extender error
    assert sched[0].startswith(f"0/1 nodes are available: 1 {WHY}"), sched
    assert "Preemption is not helpful for scheduling" in sched[0], sched
    assert calls <= 1, f"{calls:g} Filter calls for one refused pod in {WINDOW_S:g} s (backoff retries)"
    assert stack.metric_sum(port, "hami_scheduler_extender_requests_total", verb="filter", result="error") == 0
    pod = stack.core.read_namespaced_pod("bad", stack.ns)
    assert pod.spec.node_name is None and pod.status.phase == "Pending"
    conds = {c.type: c for c in pod.status.conditions or []}
    assert conds["PodScheduled"].status == "False" and conds["PodScheduled"].reason == "Unschedulable"
    assert node in stack.nodes and stack.metric(port, "hami_scheduler_allocated_pods") == 0
