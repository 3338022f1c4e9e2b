"""Fragmentation Gradient Descent (FGD), the paper's policy (scheduling-benchmark.md §7).

Score = int(sigmoid(ΔF / 1000) × 100) with ΔF = F_n(M) before − after the hypothetical placement.
A sharing pod tries every GPU that fits and keeps the best ΔF (which also fixes the GPU); a
whole-GPU pod takes the lowest-indexed free GPUs.
"""

from __future__ import annotations

import math

from .base import FULL, BasePolicy, NodeView, PodShape, fits, whole_gpus
from .frag import FragModel


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def placements(node: NodeView, pod: PodShape) -> list[tuple[int, ...]]:
    """Candidate device sets: one per distinct free level for sharing pods, else whole GPUs."""
    if pod.num_gpu == 0:
        return [()]
    if pod.num_gpu == 1 and pod.milli < FULL:
        seen: dict[int, int] = {}
        for i, f in enumerate(node.gpu_free):
            if f >= pod.milli and f not in seen:
                seen[f] = i
        return [(i,) for i in seen.values()]
    return [whole_gpus(node, pod)]


def after(node: NodeView, pod: PodShape, gpus: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """(cpu_free, sorted free milli) of the node once the pod sits on ``gpus``."""
    free = list(node.gpu_free)
    for i in gpus:
        free[i] -= pod.milli
    return node.cpu_free - pod.cpu, tuple(sorted(free))


class FGDPolicy(BasePolicy):
    name = "fgd"

    def __init__(self) -> None:
        self.model: FragModel | None = None

    def prepare(self, workload, memory=None, capacity=None, cpu_capacity=None) -> None:
        self.model = FragModel(workload)

    def delta(self, node: NodeView, pod: PodShape) -> list[tuple[float, tuple[int, ...]]]:
        """(ΔF, devices) for every candidate placement on a node that fits."""
        assert self.model is not None, "prepare() must be called with the target workload"
        before = self.model.frag_of(node.model, node.cpu_free, node.gpu_free)
        out = []
        for gpus in placements(node, pod):
            cpu, frees = after(node, pod, gpus)
            out.append((before - self.model.frag(node.model, cpu, frees), gpus))
        return out

    def score(self, node: NodeView, pod: PodShape):
        if not fits(node, pod):
            return None
        best_d, best_g = max(self.delta(node, pod), key=lambda t: t[0])
        return float(int(sigmoid(best_d / 1000) * 100)), best_g
