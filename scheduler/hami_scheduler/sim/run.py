"""One simulation run (variant, policy, seed) following the FGD paper's method."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ..policies import PodShape, make_policy
from .cluster import DEFAULT_TIE_BREAK, SimCluster
from .trace import TraceNode, TracePod, load_nodes, load_pods
from .workload import arrival_order, class_memory, target_workload

MAX_BIN = 130


@dataclass
class RunResult:
    variant: str
    policy: str
    seed: int
    #: Mean GPU allocation ratio (%) per arrival bin 0..130.
    curve: list[float]
    pods: int
    failed: int
    total_gpus: int
    #: Offline upper bound (sim/bound.py) on the allocation ratio (%) at arrival 100 % and 130 %: no
    #: placement of the pods arrived by then could allocate more. None when not computed.
    bound_100: float | None = None
    bound_130: float | None = None


def _bin_curve(sums: list[float], counts: list[int]) -> list[float]:
    """Per-bin mean; an empty bin falls back to its ±1 neighbours, then to the previous value."""
    out: list[float] = []
    for b in range(MAX_BIN + 1):
        if counts[b]:
            out.append(sums[b] / counts[b])
            continue
        near = [sums[j] / counts[j] for j in (b - 1, b + 1) if 0 <= j <= MAX_BIN and counts[j]]
        out.append(sum(near) / len(near) if near else (out[-1] if out else 0.0))
    return out


def shape_of(pod) -> PodShape:
    return PodShape(pod.cpu_milli, pod.memory_mib, pod.num_gpu, pod.gpu_milli, pod.gpu_spec)


@dataclass(frozen=True)
class TraceSource:
    """One of the paper's pod-list variants in a trace directory (published figures exist)."""

    trace_dir: str
    variant: str

    @property
    def label(self) -> str:
        return self.variant

    def load(self) -> tuple[tuple[TraceNode, ...], tuple[TracePod, ...]]:
        return load_nodes(self.trace_dir), load_pods(self.trace_dir, self.variant)


@dataclass(frozen=True)
class FileSource:
    """An operator's own node and pod lists (openb CSV format); no published figures."""

    nodes_path: str
    pods_path: str

    @property
    def label(self) -> str:
        return f"file:{Path(self.pods_path).name}"

    def load(self) -> tuple[tuple[TraceNode, ...], tuple[TracePod, ...]]:
        from .listfile import check_arrivals, load_node_file, load_pod_file

        nodes, pods = load_node_file(self.nodes_path), load_pod_file(self.pods_path)
        check_arrivals(self.pods_path, nodes, pods)
        return nodes, pods


Source = TraceSource | FileSource


def prepare_run(
    trace_dir: str | Source, variant: str | None, policy_name: str, seed: int, limit: int | None = None,
    tie_break: str = DEFAULT_TIE_BREAK,
) -> tuple[tuple[TraceNode, ...], list[TracePod], SimCluster]:
    """Nodes, the seed's arrival order and an empty cluster whose policy knows the target workload.

    ``trace_dir`` may instead be a :class:`TraceSource`/:class:`FileSource` (``variant`` is then ignored).
    """
    source = trace_dir if isinstance(trace_dir, TraceSource | FileSource) else TraceSource(trace_dir, variant)
    nodes, pods = source.load()
    order = arrival_order(pods, seed, sum(n.gpus for n in nodes) * 1000)
    if limit is not None:
        order = order[:limit]
    policy = make_policy(policy_name)
    capacity: dict[str, int] = {}
    for n in nodes:
        capacity[n.model] = capacity.get(n.model, 0) + n.gpus
    policy.prepare(target_workload(order), class_memory(order), capacity, sum(n.cpu_milli for n in nodes))
    return nodes, order, SimCluster(nodes, policy, random.Random(seed), tie_break)


def simulate_one(
    trace_dir: str | Source, variant: str | None, policy_name: str, seed: int, limit: int | None = None,
    engine_check: bool = True,
    tie_break: str = DEFAULT_TIE_BREAK,
) -> RunResult:
    """Arrive pods one at a time (no departures) and record the allocation ratio per arrival bin.

    ``trace_dir`` is a trace directory (with ``variant``) or a :class:`TraceSource`/:class:`FileSource`.
    """
    source = trace_dir if isinstance(trace_dir, TraceSource | FileSource) else TraceSource(trace_dir, variant)
    variant = source.label
    nodes, order, cluster = prepare_run(source, None, policy_name, seed, limit, tie_break)
    total_gpus = sum(n.gpus for n in nodes)
    if engine_check:
        from .engine_check import EngineMirror

        EngineMirror(nodes).attach(cluster)
    sums = [0.0] * (MAX_BIN + 1)
    counts = [0] * (MAX_BIN + 1)
    arrived = used = failed = 0
    in_bin_100 = 0  # pods arrived by the end of arrival bin 100 (the bound's prefix)
    for k, pod in enumerate(order):
        shape = shape_of(pod)
        arrived += shape.gpu_total
        if int(arrived / total_gpus / 10 + 0.5) <= 100:
            in_bin_100 = k + 1
        if cluster.schedule(shape) is None:
            failed += 1
        else:
            used += shape.gpu_total
        b = int(arrived / total_gpus / 10 + 0.5)
        if b <= MAX_BIN:
            sums[b] += used / total_gpus / 10
            counts[b] += 1
    from .bound import gpu_upper_bound

    # The curve at a bin averages allocation over the pods arriving in it; each is at most the bound of
    # its prefix, and the bound grows with the prefix, so the bound of the bin's last prefix caps it.
    b100 = 100 * gpu_upper_bound(nodes, order[:in_bin_100]) / total_gpus / 1000
    b130 = 100 * gpu_upper_bound(nodes, order) / total_gpus / 1000
    return RunResult(variant, policy_name, seed, _bin_curve(sums, counts), len(order), failed, total_gpus,
                     round(b100, 3), round(b130, 3))
