"""Two scheduler replicas (kube-scheduler + extender each, as the chart deploys them) on one Lease each.

kube-scheduler elects its own leader; the extenders elect theirs on a coordination.k8s.io Lease. The test
arranges that the leading kube-scheduler sits next to the *follower* extender (so the follower must forward
to the leader), then kills the leading extender's whole replica without releasing anything, and checks:
one leader at a time, failover within the lease duration, every pod placed, no slice handed out twice.
"""

from __future__ import annotations

import random
import signal
import time

from k8s_stack import gpu_pod

LEASE_S = 4.0
EXT_LEASE = "hami-scheduler-extender"
SCHED_LEASE = "hami-scheduler"
N = 24  # pods; half before the failover, half after


def probe(ns: str) -> dict:
    """A filter call for a pod without devices: the leader answers with the nodes, a follower forwards."""
    return {"Pod": {"metadata": {"name": "probe", "namespace": ns},
                    "spec": {"containers": [{"name": "c", "image": "x"}]}}, "NodeNames": ["some-node"]}


def test_two_replicas_one_leader_failover_within_lease_no_double_allocation(stack, deadline):
    stack.add_nodes(4)
    flags = ["--leader-elect", "--leader-elect-namespace", stack.ns, "--leader-elect-lease-duration", str(LEASE_S),
             "--leader-elect-renew-deadline", "3", "--leader-elect-retry-period", "0.5"]
    ext_a, port_a = stack.start_extender("ext-a", extra=[*flags, "--leader-elect-identity", "replica-a"])
    deadline(lambda: stack.lease_holder(EXT_LEASE) == "replica-a", 20, "replica-a leading the extender lease")
    ext_b, port_b = stack.start_extender("ext-b", extra=[*flags, "--leader-elect-identity", "replica-b"])
    # exactly one leader: B stays a follower while A renews
    time.sleep(LEASE_S + 1)
    assert stack.lease_holder(EXT_LEASE) == "replica-a"
    # the extender answers only for pods the API holds: a probe pod no scheduler will pick up
    stack.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe"},
                  "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "x"}]}})
    assert stack.post(port_a, "filter", probe(stack.ns))["NodeNames"] == ["some-node"]
    assert stack.post(port_b, "filter", probe(stack.ns))["NodeNames"] == ["some-node"]  # forwarded to A
    stack.core.delete_namespaced_pod("probe", stack.ns, grace_period_seconds=0)

    # kube-scheduler B leads its own lease and talks to extender B (a follower): B forwards to A
    sched_b = stack.start_scheduler(port_b, "sched-b", lease=SCHED_LEASE)
    deadline(lambda: stack.lease_holder(SCHED_LEASE), 30, "kube-scheduler B leading")
    sched_a = stack.start_scheduler(port_a, "sched-a", lease=SCHED_LEASE)
    rng = random.Random(5)
    pods = [gpu_pod(f"l{i:02d}", mem=rng.randrange(1024, 4097, 512), cores=rng.randrange(5, 16, 5)) for i in range(N)]
    for pod in pods[:N // 2]:
        stack.create(pod)
    deadline(lambda: sum(1 for p in stack.pods() if p["status"].get("phase") == "Running") >= N // 2, 60,
             "the first half of the pods running (placed by the leader through B's forwarding)", explain=stack.describe)

    # replica A dies (extender and its kube-scheduler), holding the extender lease, releasing nothing
    t0 = time.monotonic()
    ext_a.popen.send_signal(signal.SIGKILL)
    sched_a.popen.send_signal(signal.SIGKILL)
    for pod in pods[N // 2:]:
        stack.create(pod)
    deadline(lambda: stack.lease_holder(EXT_LEASE) == "replica-b", LEASE_S + 5, "replica-b taking the lease")
    failover_s = time.monotonic() - t0
    assert failover_s <= LEASE_S + 2, f"failover took {failover_s:.1f}s for a {LEASE_S}s lease"
    deadline(lambda: sum(1 for p in stack.pods() if p["status"].get("phase") == "Running") == N, 60,
             "all pods running after the failover", explain=stack.describe)
    truth = stack.replay()
    assert truth["bound"] == N
    assert truth["overcommits"] == [] and truth["mismatched"] == [] and truth["unallocated"] == []
    assert stack.metric(port_b, "hami_scheduler_allocated_pods") == N
    assert sched_b.alive() and ext_b.alive()
    # a clean stop (SIGTERM, as the kubelet sends it) hands the lease back at once
    ext_b.popen.send_signal(signal.SIGTERM)
    deadline(lambda: stack.lease_holder(EXT_LEASE) == "", 5, "replica-b releasing the lease on SIGTERM")
