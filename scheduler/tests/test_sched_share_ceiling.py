"""The share-packing ceiling of scheduler/benchmarks/packing_gap.py: a proven least GPU count for shares.

docs/scheduler.md's multi-GPU paragraph rests on it, so it must never exceed the true optimum (brute force
on small lists) and must be exact where the pattern rows bind.
"""

from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import packing_gap as pg  # noqa: E402


def optimum_gpus(sizes: list[int]) -> int:
    """Fewest GPUs by brute force: try every assignment of the shares to k GPUs, k = 1, 2, ..."""
    for k in range(1, len(sizes) + 1):
        for assign in itertools.product(range(k), repeat=len(sizes)):
            load = [0] * k
            for s, g in zip(sizes, assign, strict=True):
                load[g] += s
            if max(load) <= 1000:
                return k
    return len(sizes)


def test_exact_where_pairs_cannot_share() -> None:
    assert pg.share_gpus_lower_bound([600] * 4) == 4  # no two 600s share a GPU (volume alone says 3)
    assert pg.share_gpus_lower_bound([810] * 3 + [190] * 3) == 3
    assert pg.share_gpus_lower_bound([810] * 5 + [160]) == 5
    assert pg.share_gpus_lower_bound([470, 470, 470, 470, 70]) == 3  # 470+470+70 > 1000 (volume says 2)
    assert pg.share_gpus_lower_bound([]) == 0


def test_never_above_the_optimum_nor_below_volume() -> None:
    rng = random.Random(7)
    trace_sizes = (50, 100, 160, 190, 250, 320, 470, 500, 650, 810, 900)
    for _ in range(25):
        sizes = [rng.choice(trace_sizes) for _ in range(rng.randint(1, 7))]
        lb = pg.share_gpus_lower_bound(sizes)
        assert -(-sum(sizes) // 1000) <= lb <= optimum_gpus(sizes), sizes


def test_ffd_is_an_upper_bound_it_starts_from() -> None:
    sizes = [810] * 10 + [470] * 7 + [320] * 5 + [160] * 2
    gpus, idle = pg.ffd_idle(sizes)
    assert idle == gpus * 1000 - sum(sizes)
    assert pg.share_gpus_lower_bound(sizes) <= gpus
