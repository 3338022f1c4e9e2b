"""The FGD paper's baselines (scheduling-benchmark.md §8): Random, DotProd, GpuClustering,
GpuPacking and BestFit. Scores are integers 0-100 like the simulator's plugins."""

from __future__ import annotations

import random

from .base import (
    FULL,
    MAX_CPU_MILLI,
    MAX_GPU_MILLI,
    BasePolicy,
    NodeView,
    PodShape,
    best_fit_gpu,
    fits,
)


class RandomPolicy(BasePolicy):
    """Every feasible node scores the same; the caller's random tie-break picks one uniformly."""

    name = "random"
    random_ties = True

    def score(self, node: NodeView, pod: PodShape):
        if not fits(node, pod):
            return None
        return 0.0, best_fit_gpu(node, pod)

    def devices(self, node, pod, chosen, rng: random.Random):
        if pod.num_gpu != 1 or pod.milli >= FULL:
            return chosen
        ok = [i for i, f in enumerate(node.gpu_free) if f >= pod.milli]
        return (rng.choice(ok),)


class DotProductPolicy(BasePolicy):
    """Tetris-style: prefer nodes whose free vector is least aligned with the request."""

    name = "dotprod"

    def score(self, node: NodeView, pod: PodShape):
        if not fits(node, pod):
            return None
        dot = (node.cpu_free / MAX_CPU_MILLI) * (pod.cpu / MAX_CPU_MILLI) + (
            node.gpu_free_total / MAX_GPU_MILLI
        ) * (pod.gpu_total / MAX_GPU_MILLI)
        return float(int(100 * (1 - 0.5 * dot))), best_fit_gpu(node, pod)


class BestFitPolicy(BasePolicy):
    """Least leftover CPU and GPU after placement, equally weighted."""

    name = "bestfit"

    def score(self, node: NodeView, pod: PodShape):
        if not fits(node, pod):
            return None
        left = 0.5 * (node.cpu_free - pod.cpu) / MAX_CPU_MILLI + 0.5 * (
            node.gpu_free_total - pod.gpu_total
        ) / MAX_GPU_MILLI
        return float(int(100 * (1 - left))), best_fit_gpu(node, pod)


class GpuClusteringPolicy(BasePolicy):
    """Keep GPU request classes together: bands by the classes already on the node."""

    name = "clustering"

    def node_key(self, node: NodeView) -> tuple:
        return (*node.key(), tuple(sorted(node.classes)))

    def score(self, node: NodeView, pod: PodShape):
        if not fits(node, pod):
            return None
        if pod.num_gpu == 0:
            return 0.0, ()
        here = set(node.classes)
        if not here:
            band = 25
        elif here == {pod.cls}:
            band = 75
        elif pod.cls in here:
            band = 50
        else:
            band = 0
        fullness = 25 * (MAX_GPU_MILLI - min(node.gpu_free_total, MAX_GPU_MILLI)) / MAX_GPU_MILLI
        return float(int(band + fullness)), best_fit_gpu(node, pod)


class GpuPackingPolicy(BasePolicy):
    """Prefer partly used GPUs, then partly used nodes, then idle nodes with fewer GPUs.

    Three bands, as the paper's simulator scores them: a pod that fits on already shared GPUs scores
    100 − (free % of the GPUs it would use) / 10 (at least 50); one that needs fully free GPUs on a
    partly used node scores 50 − (number of fully free GPUs it would use) (at least 33); on an idle node
    it scores 33 − (GPUs on the node). The second band does not look at how many GPUs the node has
    left idle, so every partly used node ties there and the tie rule decides (see ``SimCluster``).
    """

    name = "packing"

    def score(self, node: NodeView, pod: PodShape):
        if not fits(node, pod):
            return None
        if pod.num_gpu == 0:
            return 0.0, ()
        gpus = best_fit_gpu(node, pod)
        free = node.gpu_free
        idle = sum(1 for f in free if f >= FULL)
        if idle == len(free):
            return float(max(33 - idle, idle)), gpus
        fresh = sum(1 for g in gpus if free[g] >= FULL)
        if fresh:
            return float(max(50 - fresh, 33)), gpus
        used_pct = sum(free[g] * 100 // FULL for g in gpus)
        return float(max(100 - used_pct // 10, 50)), gpus
