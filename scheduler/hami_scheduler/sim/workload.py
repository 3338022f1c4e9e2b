"""The FGD paper's arrival workload: shuffle per seed, then inflate to a share of GPU capacity.

Follows the simulator (hkust-adsl/kubernetes-scheduler-simulator @ 8f3d641) as described in
scheduling-benchmark.md §5: pods sorted by name, shuffled once with the seed, then pods sampled
with replacement are appended (renamed ``<name>-tuned-<i>``) until the GPU request reaches
``ratio × capacity``. The stop test keeps the simulator's quirk: it compares
``accumulated + gpu_milli`` (per-GPU milli of the candidate) while the accumulation adds
``num_gpu × gpu_milli``. Python's RNG replaces Go's ``math/rand``, so runs are statistically, not
bit-for-bit, equal to the paper's.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

from ..policies.frag import popular_classes
from .trace import TracePod


def arrival_order(pods: tuple[TracePod, ...], seed: int, capacity_milli: int, ratio: float = 1.3) -> list[TracePod]:
    """Shuffled and inflated pod list for one seed."""
    rng = random.Random(seed)
    ordered = sorted(pods, key=lambda p: p.name)
    rng.shuffle(ordered)
    target = capacity_milli * ratio
    total = sum(p.gpu_request_milli for p in ordered)
    if total > target:
        # Below the current ratio the simulator removes random pods instead.
        while ordered and total > target:
            victim = ordered.pop(rng.randrange(len(ordered)))
            total -= victim.gpu_request_milli
        return ordered
    base = list(ordered)
    i = 0
    while True:
        pick = base[rng.randrange(len(base))]
        if total + pick.gpu_milli > target:
            break
        ordered.append(replace(pick, name=f"{pick.name}-tuned-{i}"))
        total += pick.gpu_request_milli
        i += 1
    return ordered


def target_workload(pods: list[TracePod], threshold: float = 0.95) -> list[tuple[tuple, float]]:
    """FGD's target workload M: the most popular specs covering ``threshold`` of pods, renormalised."""
    return popular_classes(Counter(p.spec for p in pods), threshold)


def class_memory(pods: list[TracePod]) -> dict[tuple, float]:
    """Mean memory request (MiB) of each workload class; FGD ignores memory, our policy does not."""
    sums: dict[tuple, list[float]] = {}
    for p in pods:
        acc = sums.setdefault(p.spec, [0.0, 0])
        acc[0] += p.memory_mib
        acc[1] += 1
    return {k: v[0] / v[1] for k, v in sums.items()}
