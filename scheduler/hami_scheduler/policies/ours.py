"""hami-hal's packing policy, built on FGD's fragmentation idea but aware of CPU and memory.

``frag-pack`` (our best) scores a placement by the exact change of a capacity-aware fragmentation
(:class:`~.frag.PackingFragModel`: how much idle GPU each workload class could no longer absorb,
counting GPU, CPU *and memory* slots) and breaks near-ties by best fit over CPU, GPU and memory.
FGD ignores memory although the filter checks it; on the openb trace most of FGD's failures at
100 % arrival are memory-stranded GPUs, which is what this policy avoids.
``frag-bestfit`` is the ablation without memory and with FGD's single-pod fragmentation.
"""

from __future__ import annotations

from .base import MAX_CPU_MILLI, MAX_GPU_MILLI, NodeView, PodShape, fits
from .fgd import FGDPolicy, after
from .frag import FragModel, PackingFragModel

#: Memory normalisation for the best-fit term: 1 TiB in MiB (largest openb node).
MAX_MEM_MIB = 1_048_576


class FragBestFitPolicy(FGDPolicy):
    """Exact ΔF (FGD's measure) plus a weighted best-fit term over CPU and GPU."""

    name = "frag-bestfit"

    def __init__(self, fit_weight: float = 1.0) -> None:
        super().__init__()
        self.fit_weight = fit_weight

    def prepare(self, workload, memory=None) -> None:
        self.model = FragModel(workload)

    def score(self, node: NodeView, pod: PodShape):
        if not fits(node, pod):
            return None
        best_d, best_g = max(self.delta(node, pod), key=lambda t: t[0])
        left = 0.5 * (node.cpu_free - pod.cpu) / MAX_CPU_MILLI + 0.5 * (
            node.gpu_free_total - pod.gpu_total
        ) / MAX_GPU_MILLI
        return best_d - self.fit_weight * 100 * left, best_g


class FragPackPolicy(FGDPolicy):
    """Capacity-aware fragmentation over GPU, CPU and memory, with a best-fit tie-break."""

    name = "frag-pack"

    def __init__(self, fit_weight: float = 0.3, mem_weight: float = 1.0) -> None:
        super().__init__()
        self.fit_weight = fit_weight
        self.mem_weight = mem_weight
        self.packing: PackingFragModel | None = None

    def prepare(self, workload, memory=None) -> None:
        self.packing = PackingFragModel(workload, memory)

    memory_aware = True

    def node_key(self, node: NodeView) -> tuple:
        return (*node.key(), node.mem_free)

    def score(self, node: NodeView, pod: PodShape):
        if not fits(node, pod):
            return None
        m = self.packing
        assert m is not None, "prepare() must be called with the target workload"
        before = m.frag(node.model, node.cpu_free, tuple(sorted(node.gpu_free)), node.mem_free)
        best = None
        for gpus in _candidates(node, pod):
            cpu, frees = after(node, pod, gpus)
            d = before - m.frag(node.model, cpu, frees, node.mem_free - pod.mem)
            if best is None or d > best[0]:
                best = (d, gpus)
        assert best is not None
        left = (
            (node.cpu_free - pod.cpu) / MAX_CPU_MILLI
            + (node.gpu_free_total - pod.gpu_total) / MAX_GPU_MILLI
            + self.mem_weight * (node.mem_free - pod.mem) / MAX_MEM_MIB
        ) / (2 + self.mem_weight)
        return best[0] - self.fit_weight * 100 * left, best[1]


def _candidates(node: NodeView, pod: PodShape):
    from .fgd import placements

    return placements(node, pod)
