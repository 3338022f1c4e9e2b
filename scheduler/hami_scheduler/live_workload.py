"""The target workload of a live cluster, for the fragmentation policies in the extender.

FGD and ``frag-pack`` score a placement against a workload mix M (class → popularity). The simulator
takes M from the trace it replays; the extender takes it from the pods the cluster holds now, read
from their allocations, so ``--policy fgd`` ranks nodes by the fragmentation the running mix sees.
Without any pod there is no mix: the policies then fall back to their best-fit terms.
"""

from __future__ import annotations

import time
from collections import Counter

from hami_hal.models import PodAllocation

from .policies.base import BasePolicy
from .policies.frag import Workload, popular_classes
from .state import ClusterState


def pod_class(alloc: PodAllocation, cluster: ClusterState) -> tuple | None:
    """(cpu, per-device milli, device count, types) of a held pod, as the policies' classes read.

    A slice's share of its device is the larger of its compute and memory share (an exclusive slice
    takes the whole device), rounded to 10 milli like the trace's ``gpu_milli``. CPU is not tracked
    by the extender's views, so it is 0. None for a pod without device slices.
    """
    entry = cluster.nodes.get(alloc.node)
    shares = []
    for c in alloc.containers:
        if c.init:
            continue
        for s in c.slices:
            st = entry.state.devices.get(s.uuid) if entry else None
            if s.exclusive or st is None:
                shares.append(1000)
                continue
            mem = s.memory_mib * 1000 // max(st.part.memory_mib, 1)
            shares.append(min(1000, max(s.compute_percent * 10, mem)))
    if not shares:
        return None
    milli = min(1000, int(round(max(shares), -1)))
    return (0, milli, len(shares), ())


def live_workload(cluster: ClusterState, coverage: float = 0.95) -> tuple[Workload, dict[str, int]]:
    """FGD's M from the held pods (most popular classes covering ``coverage`` of pods, renormalised)
    and the device count per model (the policies' capacity input)."""
    with cluster.lock:
        counts = Counter(k for k in (pod_class(a, cluster) for a in cluster.pods.values()) if k)
        capacity: Counter[str] = Counter()
        for entry in cluster.nodes.values():
            for d in entry.inventory.devices:
                capacity[d.model] += 1
    return popular_classes(counts, coverage), dict(capacity)


class WorkloadFeed:
    """Re-prepares a policy with the live workload, at most every ``refresh_s`` seconds and only when
    the set of held pods changed, so scoring stays cheap between refreshes (policies memoise)."""

    def __init__(self, policy: BasePolicy, refresh_s: float = 10.0) -> None:
        self.policy = policy
        self.refresh_s = refresh_s
        self._seen: frozenset[str] | None = None
        self._at = float("-inf")
        self.workload: Workload = []

    def refresh(self, cluster: ClusterState, now: float | None = None) -> bool:
        """Prepare the policy again if due; True when it did."""
        now = time.monotonic() if now is None else now
        if now - self._at < self.refresh_s:
            return False
        with cluster.lock:
            keys = frozenset(cluster.pods)
        if keys == self._seen:
            return False
        self.workload, capacity = live_workload(cluster)
        self.policy.prepare(self.workload, None, capacity)
        self._seen, self._at = keys, now
        return True
