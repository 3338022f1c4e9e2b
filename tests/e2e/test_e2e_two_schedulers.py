"""Two independent schedulers (no leader election: two kube-schedulers, each with its own extender and its own
cache) competing for the same devices on a real apiserver. The bind-time replay under HAMi's node lock, with
the real apiserver's resourceVersion conflicts, must keep every device within its memory, cores and slots
(safety), and once the node is full every other pod must end Unschedulable (liveness): both caches know every
bound pod, so no filter keeps choosing a full device whose bind the replay then refuses."""

from __future__ import annotations

import time

from k8s_stack import gpu_pod

MEM = 8192  # 5 pods per 40960 MiB device, so the one 2-device node takes 10 of the 40 pods


def running(stack) -> list[str]:
    return [p["metadata"]["name"] for p in stack.pods() if p["status"].get("phase") == "Running"]


def test_two_schedulers_with_separate_caches_never_overcommit_and_settle(stack, deadline):
    stack.add_nodes(1, gpus=2)
    _, port_a = stack.start_extender("ext-a")
    _, port_b = stack.start_extender("ext-b")
    stack.start_scheduler(port_a, "sched-a", scheduler_name="sched-a")
    stack.start_scheduler(port_b, "sched-b", scheduler_name="sched-b")
    for i in range(20):
        stack.create(gpu_pod(f"a{i:02d}", mem=MEM, cores=10, scheduler="sched-a"))
        stack.create(gpu_pod(f"b{i:02d}", mem=MEM, cores=10, scheduler="sched-b"))
    deadline(lambda: len(running(stack)) >= 10, 90, "the node filled", explain=stack.describe)
    # safety, checked repeatedly while both schedulers keep trying to place the other 30 pods
    for _ in range(3):
        truth = stack.replay()
        assert truth["overcommits"] == [] and truth["mismatched"] == [] and truth["unallocated"] == []
        assert truth["bound"] == 10
        time.sleep(0.5)
    # both schedulers competed: each extender answered filter calls (which one wins the node is a race)
    for port in (port_a, port_b):
        assert stack.metric_sum(port, "hami_scheduler_extender_requests_total", verb="filter") >= 10
    # liveness: every other pod ends Unschedulable, and stays so (no filter/bind-refusal loop)
    deadline(lambda: stack.settled() == {"running": 10, "unschedulable": 30}, 30,
             "the other 30 pods were marked Unschedulable", explain=stack.describe)
    binds = [stack.metric_sum(port, "hami_scheduler_extender_requests_total", verb="bind") for port in (port_a, port_b)]
    time.sleep(1.5)
    assert stack.settled() == {"running": 10, "unschedulable": 30}
    assert [stack.metric_sum(port, "hami_scheduler_extender_requests_total", verb="bind")
            for port in (port_a, port_b)] == binds, "a full node still gets bind attempts"
    assert stack.replay()["overcommits"] == []
