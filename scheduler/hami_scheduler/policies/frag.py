"""Fragmentation of a node against a target workload (FGD paper, ``pkg/utils/frag.go``).

For a workload class m = (cpu, per-GPU milli, GPU count, GPU types) with popularity p_m, the node's
fragment F_n(m) is its idle GPU milli when m cannot run there at all (CPU-only class, wrong model,
too few fitting GPUs, too little CPU), and otherwise the free milli of the GPUs too small for m.
F_n(M) = Σ p_m · F_n(m). Results are memoised on the node's (model, CPU, sorted free milli) state.
"""

from __future__ import annotations

Workload = list[tuple[tuple, float]]


def popular_classes(counts: dict[tuple, int], coverage: float = 0.95) -> Workload:
    """FGD's target workload M from class counts: the most popular classes covering ``coverage`` of the
    pods, popularity renormalised over them (ties broken by class, so M is deterministic)."""
    total = sum(counts.values())
    kept: list[tuple[tuple, int]] = []
    covered = 0
    for spec, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        kept.append((spec, n))
        covered += n
        if covered >= coverage * total:
            break
    mass = sum(n for _, n in kept)
    return [(spec, n / mass) for spec, n in kept]


class FragModel:
    """Memoised F_n(M) for one target workload."""

    def __init__(self, workload: Workload, cpu_only_idle: bool = True) -> None:
        self.cpu_only_idle = cpu_only_idle
        self.classes = [(cpu, milli, num, frozenset(types), p) for (cpu, milli, num, types), p in workload]
        self._memo: dict[tuple, float] = {}

    def frag(self, model: str, cpu_free: int, frees: tuple[int, ...]) -> float:
        """F_n(M) for a node state; ``frees`` must be sorted ascending (memo key)."""
        key = (model, cpu_free, frees)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        idle = sum(frees)
        total = 0.0
        for cpu, milli, num, types, p in self.classes:
            if milli == 0 and not self.cpu_only_idle and cpu <= cpu_free:
                continue
            if milli == 0 or cpu > cpu_free or (types and model not in types):
                total += p * idle
                continue
            fitting = 0
            small = 0
            for f in frees:
                if f >= milli:
                    fitting += 1
                else:
                    small += f
            total += p * (small if fitting >= num else idle)
        self._memo[key] = total
        return total

    def frag_of(self, model: str, cpu_free: int, gpu_free: list[int] | tuple[int, ...]) -> float:
        return self.frag(model, cpu_free, tuple(sorted(gpu_free)))


class PackingFragModel(FragModel):
    """Capacity-aware fragmentation: the idle GPU milli a class could *not* absorb if it kept
    arriving until the node's GPUs or CPU ran out.

    FGD asks whether one more pod of class m fits; this asks how many do. For class m the node
    holds k = min(GPU slots, CPU slots) more pods, so F_n(m) = I_n − k × num_gpu × milli. CPU that
    a placement burns is therefore charged in stranded GPU, which FGD's single-pod test misses.
    """

    def __init__(self, workload: Workload, memory: dict[tuple, float] | None = None) -> None:
        super().__init__(workload)
        memory = memory or {}
        self.mem = [memory.get(spec, 0.0) for spec, _ in workload]

    def frag(self, model: str, cpu_free: int, frees: tuple[int, ...], mem_free: int = 1 << 62) -> float:
        key = (model, cpu_free, frees, mem_free)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        idle = sum(frees)
        total = 0.0
        for (cpu, milli, num, types, p), mem in zip(self.classes, self.mem, strict=True):
            if milli == 0 or cpu > cpu_free or mem > mem_free or (types and model not in types):
                total += p * idle
                continue
            if num == 1 and milli < 1000:
                slots = sum(f // milli for f in frees)
            else:
                slots = sum(1 for f in frees if f >= milli) // num
            if cpu:
                slots = min(slots, cpu_free // cpu)
            if mem >= 1:
                slots = min(slots, int(mem_free // mem))
            total += p * (idle - slots * num * milli)
        self._memo[key] = total
        return total


def cpu_per_gpu_milli(workload: Workload) -> float | None:
    """κ: CPU milli the target workload's GPU pods ask per GPU milli (None without GPU classes)."""
    gpu = sum(p * milli * num for (_cpu, milli, num, _t), p in workload if num)
    cpu = sum(p * cpu for (cpu, _milli, num, _t), p in workload if num)
    return cpu / gpu if gpu and cpu else None


def stranded_gpu(cpu_free: int, gpu_free: int, kappa: float | None) -> float:
    """GPU milli a node cannot use because its CPU runs out first.

    GPU pods bring κ CPU milli per GPU milli on average, so a node's idle GPU beyond
    ``cpu_free / κ`` is stranded. FGD only asks whether the *next* pod of each class still finds
    CPU; a CPU-only pod that lands on a node with idle GPUs and little spare CPU strands GPU that no
    class-by-class test sees until it is too late (most of our remaining idle GPU on ``default``
    and ``multigpu40`` sat on such nodes).
    """
    if kappa is None:
        return 0.0
    return max(0.0, gpu_free - cpu_free / kappa)


def dead_gap_table(workload: Workload, min_share: float = 0.03) -> list[int]:
    """V[g]: the least free milli a GPU with ``g`` free can be brought to with the *common* sharing
    sizes (V[g] = g when none fits; an empty table when the workload has no sharing sizes).

    A size is common when it makes up at least ``min_share`` of the sharing pods, summed over its
    workload classes. Placing a pod so that V rises turns a gap future pods would close into one
    they cannot: a 350 gap (beside a 650) closes with a 320 (V = 30), while a 230 put there leaves
    120 for good. Rare sizes are left out on purpose: 160-milli pods could close the 190 left beside
    every 810, but there are far fewer of them than such gaps, and counting them as closers made
    placements that strand exactly those gaps (``gpushare80``, seeds 42-43: 90.3 % without them,
    83.8 % with them).
    """
    share: dict[int, float] = {}
    for (_cpu, milli, num, _types), p in workload:
        if num == 1 and 0 < milli < 1000:
            share[milli] = share.get(milli, 0.0) + p
    total = sum(share.values())
    sizes = sorted(milli for milli, p in share.items() if p >= min_share * total)
    if not sizes:
        return []
    table = [0] * 1001
    for g in range(1, 1001):
        table[g] = min([g, *(table[g - s] for s in sizes if s <= g)])
    return table
