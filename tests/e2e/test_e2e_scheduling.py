"""The real kube-scheduler places HAMi pods through our extender on a real apiserver.

Checked from the API alone: every bound pod's allocation annotation replayed into fresh engine states
(no slice handed out twice, nothing over a device's memory, cores or slots), nothing left behind after
deletion (the extender's cache, node locks, and the capacity itself: whole-node pods fit again).
"""

from __future__ import annotations

import random
import signal
import time

import pytest
from k8s_stack import gpu_pod

N_PODS = 100
STALE_LOCK = (
    "the extender was killed between taking HAMi's node lock and releasing it, and the lock still blocks its "
    "node after 15 s: the restarted extender must take over a lock whose holder's bind is over")


def random_pods(seed: int, n: int, prefix: str = "p") -> list[dict]:
    rng = random.Random(seed)
    return [gpu_pod(f"{prefix}{i:03d}", gpus=rng.choice((1, 1, 1, 1, 2)), mem=rng.randrange(1024, 12289, 512),
                    cores=rng.randrange(5, 41, 5)) for i in range(n)]


def test_hundred_pods_no_overcommit_and_no_stale_allocation(stack, deadline):
    stack.add_nodes(4)
    _, port = stack.start_extender()
    stack.start_scheduler(port)
    for pod in random_pods(17, N_PODS):
        stack.create(pod)
    counts = deadline(stack.settled, 180, "every pod Running or Unschedulable", explain=stack.describe)
    assert counts["running"] + counts["unschedulable"] == N_PODS
    assert counts["running"] >= 40, counts  # the cluster holds far more than a handful
    assert counts["unschedulable"] > 0, "the random shares are meant to over-fill 4 nodes"
    truth = stack.replay()
    print(f"100 pods: {counts}, replay: {truth['bound']} bound, {len(truth['overcommits'])} over-commits")
    assert truth["bound"] == counts["running"]
    assert truth["overcommits"] == [] and truth["mismatched"] == [] and truth["unallocated"] == []
    assert stack.metric(port, "hami_scheduler_allocated_pods") == counts["running"]

    stack.delete_all_pods()
    deadline(lambda: not stack.pods(), 60, "all pods deleted")
    deadline(lambda: stack.metric(port, "hami_scheduler_allocated_pods") == 0, 30, "no allocation in the cache")
    assert stack.live_locks() == {}  # a lock left by a deleted pod is free (HAMi's rule), any other would block
    # the capacity really came back: one pod taking every GPU of a node, whole, fits on each node
    for i in range(4):
        stack.create(gpu_pod(f"whole{i}", gpus=4, mem=40960, cores=100))
    counts = deadline(stack.settled, 60, "the whole-node pods placed")
    assert counts == {"running": 4, "unschedulable": 0}
    assert sorted(p["spec"]["nodeName"] for p in stack.pods()) == sorted(stack.nodes)


def test_extender_killed_and_restarted_mid_run_loses_nothing(stack, deadline):
    stack.add_nodes(4)
    proc, port = stack.start_extender()
    stack.start_scheduler(port)
    pods = random_pods(23, 60, prefix="r")
    for pod in pods[:30]:
        stack.create(pod)
    deadline(lambda: sum(1 for p in stack.pods() if p["spec"].get("nodeName")) >= 10, 60, "10 pods bound")
    proc.popen.send_signal(signal.SIGKILL)  # no goodbye: a crash, mid-cycle
    proc.popen.wait()
    for pod in pods[30:]:
        stack.create(pod)  # arrive while the extender is down: kube-scheduler's filter calls fail and retry
    stack.start_extender("extender-2", port=port)
    stale_since = None

    def settled_or_stale_lock():
        nonlocal stale_since
        counts = stack.settled()
        if counts:
            return counts
        # a lock the killed extender left, held by a pod that still exists, blocks its node for 5 min
        if stack.live_locks():
            stale_since = stale_since or time.monotonic()
            if time.monotonic() - stale_since > 15:
                return "stale-lock"
        else:
            stale_since = None
        return None

    counts = deadline(settled_or_stale_lock, 120, "every pod Running or Unschedulable after the restart",
                      explain=stack.describe)
    if counts == "stale-lock":
        # safety first, whatever happened: nothing over-committed, nothing half-allocated
        truth = stack.replay()
        assert truth["overcommits"] == [] and truth["mismatched"] == [] and truth["unallocated"] == []
        pytest.fail(f"{STALE_LOCK}: {stack.live_locks()}")
    assert counts["running"] + counts["unschedulable"] == 60
    truth = stack.replay()
    assert truth["overcommits"] == [] and truth["mismatched"] == [] and truth["unallocated"] == []
    # the restarted extender rebuilt exactly what the API holds
    assert stack.metric(port, "hami_scheduler_allocated_pods") == truth["bound"] == counts["running"]
    assert stack.live_locks() == {}
