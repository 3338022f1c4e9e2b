"""The target workload of a live cluster, for the fragmentation policies in the extender.

FGD and ``frag-pack`` score a placement against a workload mix M (class → popularity). The simulator
takes M from the trace it replays; the extender takes it from the pods the cluster holds now, read
from their allocations, so ``--policy fgd`` ranks nodes by the fragmentation the running mix sees.
Without any pod there is no mix: the policies would fall back to their best-fit terms, so a seed
mix (an openb-format pod list, or one of the trace's variants: :func:`load_seed`) stands in until the
cluster holds ``takeover`` classified pods of its own.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from hami_hal.errors import InputError
from hami_hal.models import PodAllocation

from .policies.base import BasePolicy
from .policies.frag import Workload, popular_classes
from .state import ClusterState


def pod_class(alloc: PodAllocation, cluster: ClusterState) -> tuple | None:
    """(cpu, per-device milli, device count, types) of a held pod, as the policies' classes read.

    A slice's share of its device is the larger of its compute and memory share (an exclusive slice
    takes the whole device), rounded to 10 milli like the trace's ``gpu_milli``. CPU is not tracked
    in the CPU/memory ledger (``cluster.resources``; 0 when unknown). None for a pod without device slices.
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
    return (cluster.resources.cpu_of(alloc.key), milli, len(shares), ())


def live_workload(cluster: ClusterState, coverage: float = 0.95) -> tuple[Workload, dict[str, int]]:
    """FGD's M from the held pods (most popular classes covering ``coverage`` of pods, renormalised)
    and the device count per model (the policies' capacity input)."""
    workload, capacity, _, _ = _live(cluster, coverage)
    return workload, capacity


def cluster_cpu(cluster: ClusterState) -> int | None:
    """Allocatable CPU milli summed over the device nodes (the policies' ``cpu_capacity``); None unless
    every device node reports one: a partial sum would understate the CPU and overstate CPU pressure.
    The caller holds the cluster lock."""
    total = 0
    for name in cluster.nodes:
        alloc = cluster.resources.allocatable.get(name)
        if alloc is None:
            return None
        total += alloc[0]
    return total if cluster.nodes else None


def _live(cluster: ClusterState, coverage: float = 0.95) -> tuple[Workload, dict[str, int], int, int | None]:
    with cluster.lock:
        counts = Counter(k for k in (pod_class(a, cluster) for a in cluster.pods.values()) if k)
        capacity: Counter[str] = Counter()
        for entry in cluster.nodes.values():
            for d in entry.inventory.devices:
                capacity[d.model] += 1
        cpu = cluster_cpu(cluster)
    return popular_classes(counts, coverage), dict(capacity), sum(counts.values()), cpu


@dataclass(frozen=True)
class SeedMix:
    """A workload mix to start from: classes with popularity, mean memory per class, and its origin."""

    workload: Workload
    memory: dict[tuple, float]
    source: str


def load_seed(spec: str, trace_dir: str | None = None) -> SeedMix:
    """``trace:<variant>`` (the openb trace's own mix) or the path of an openb-format pod list.

    The classes keep the list's GPU model names (``gpu_spec``): a seed for a real cluster should name
    its models as the nodes report them, or constrained classes fit nowhere."""
    from .sim.listfile import load_pod_file
    from .sim.trace import default_trace_dir, load_pods
    from .sim.workload import class_memory, target_workload

    if not isinstance(spec, str) or not spec:
        raise InputError("--workload-seed", spec, "must be a file or trace:<variant>")
    if spec.startswith("trace:"):
        pods = load_pods(str(trace_dir or default_trace_dir()), spec[len("trace:"):])
    else:
        pods = load_pod_file(spec)
    if not any(p.num_gpu for p in pods):
        raise InputError("--workload-seed", spec, "holds no GPU pod: a mix needs GPU classes")
    pods = list(pods)
    return SeedMix(target_workload(pods), class_memory(pods), spec)


class WorkloadFeed:
    """Re-prepares a policy with the live workload, at most every ``refresh_s`` seconds and only when
    the set of held pods changed, so scoring stays cheap between refreshes (policies memoise)."""

    def __init__(self, policy: BasePolicy, refresh_s: float = 10.0, seed: SeedMix | None = None,
                 takeover: int = 100) -> None:
        self.policy = policy
        self.refresh_s = refresh_s
        #: the mix used while the cluster holds fewer than ``takeover`` classified pods
        self.seed = seed
        self.takeover = takeover
        #: "seed:<source>" or "live": which mix the policy was last prepared with
        self.mode = ""
        self._seen: frozenset[str] | None = None
        self._at = float("-inf")
        self._capacity: dict[str, int] | None = None
        self._cpu: int | None = None
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
        live, capacity, held, cpu = _live(cluster)
        if self.seed is not None and held < self.takeover:
            mode = f"seed:{self.seed.source}"
            if mode != self.mode or capacity != self._capacity or cpu != self._cpu:
                self.workload = self.seed.workload
                self.policy.prepare(self.workload, self.seed.memory, capacity, cpu)
        else:
            mode = "live"
            self.workload = live
            self.policy.prepare(self.workload, None, capacity, cpu)
        self.mode, self._capacity, self._cpu = mode, capacity, cpu
        self._seen, self._at = keys, now
        return True
