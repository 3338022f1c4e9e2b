"""The offline upper bound is never below the true optimum (brute force on tiny instances) and binds
where CPU strands GPU."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hami_scheduler.sim.bound import dual_value, gpu_upper_bound
from hami_scheduler.sim.trace import TraceNode, TracePod


def brute_force(nodes: list[TraceNode], pods: list[TracePod]) -> int:
    """Largest GPU milli any placement of a subset of ``pods`` achieves (every choice enumerated)."""
    cpu = [n.cpu_milli for n in nodes]
    mem = [n.memory_mib for n in nodes]
    gpu = [[1000] * n.gpus for n in nodes]
    best = 0

    def go(i: int, total: int) -> None:
        nonlocal best
        best = max(best, total)
        if i == len(pods):
            return
        go(i + 1, total)  # leave pod i out
        p = pods[i]
        for j, n in enumerate(nodes):
            if p.cpu_milli > cpu[j] or p.memory_mib > mem[j] or (p.gpu_spec and n.model not in p.gpu_spec):
                continue
            fitting = [k for k, f in enumerate(gpu[j]) if f >= p.gpu_milli]
            for combo in itertools.combinations(fitting, p.num_gpu):
                cpu[j] -= p.cpu_milli
                mem[j] -= p.memory_mib
                for k in combo:
                    gpu[j][k] -= p.gpu_milli
                go(i + 1, total + p.gpu_request_milli)
                for k in combo:
                    gpu[j][k] += p.gpu_milli
                cpu[j] += p.cpu_milli
                mem[j] += p.memory_mib

    go(0, 0)
    return best


def test_cpu_stranding_bound_is_tight():
    nodes = [TraceNode("a", 2000, 1000, 2, "A"), TraceNode("b", 2000, 1000, 2, "A")]
    pods = [TracePod(f"p{i}", 2000, 10, 1, 1000) for i in range(4)]
    opt = brute_force(nodes, pods)
    assert opt == 2000  # GPU capacity and demand are 4000, but each node's CPU feeds one pod
    assert opt <= gpu_upper_bound(nodes, pods) <= 2000 + 1


def test_model_and_gpu_count_rows_bind():
    nodes = [TraceNode("a", 64000, 1000, 1, "A"), TraceNode("b", 64000, 1000, 4, "B")]
    pods = [TracePod("x", 100, 1, 1, 1000, ("A",)), TracePod("y", 100, 1, 1, 1000, ("A",)),
            TracePod("z", 100, 1, 2, 1000, ()), TracePod("w", 100, 1, 2, 1000, ())]
    opt = brute_force(nodes, pods)
    assert opt == 5000
    assert opt <= gpu_upper_bound(nodes, pods) <= 5000 + 1


@pytest.mark.parametrize("seed", range(25))
def test_bound_is_never_below_the_optimum(seed):
    rng = random.Random(seed)
    models = ("A", "B")
    nodes = [TraceNode(f"n{j}", rng.choice((2000, 4000, 8000)), rng.choice((2000, 8000)), rng.choice((1, 2, 2, 4)),
                       rng.choice(models)) for j in range(rng.randint(1, 3))]
    pods = []
    for i in range(rng.randint(2, 6)):
        num = rng.choice((1, 1, 1, 2))
        milli = 1000 if num > 1 else rng.choice((200, 500, 700, 1000))
        pods.append(TracePod(f"p{i}", rng.choice((500, 1000, 3000, 6000)), rng.choice((100, 1000, 4000)),
                             num, milli, (rng.choice(models),) if rng.random() < 0.3 else ()))
    opt = brute_force(nodes, pods)
    ub = gpu_upper_bound(nodes, pods)
    assert ub >= opt - 1e-6
    assert ub <= min(sum(p.gpu_request_milli for p in pods), 1000 * sum(n.gpus for n in nodes)) + 1e-6


def test_every_dual_point_bounds_the_lp():
    """Weak duality, numerically: random λ ≥ 0 never give less than a feasible y's objective."""
    rng = np.random.default_rng(0)
    sig = (rng.uniform(0, 1, (4, 7)) < 0.5).astype(float)
    b = rng.uniform(1, 3, 4)
    w = rng.uniform(0, 2, 7)
    ys = rng.uniform(0, 1, (2000, 7)) * w
    best_primal = max(float(y.sum()) for y in ys if np.all(sig @ y <= b))
    for _ in range(200):
        assert dual_value(rng.uniform(0, 3, 4), sig, b, w) >= best_primal - 1e-9


def test_simplex_duals_reach_the_lp_optimum():
    """On a small LP whose optimum is known, the certified dual bound equals it."""
    from hami_scheduler.sim.bound import _simplex

    sig = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    b = np.array([3.0, 2.0])
    w = np.array([2.0, 2.0, 2.0])
    # max y1+y2+y3 with y1+y2 <= 3, y2+y3 <= 2, 0 <= y <= 2: y = (2, 0, 2) gives 4, and (y1+y2)+(y2+y3) <= 5
    # with y1 <= 2 caps it: y1 + y2 + y3 <= 2 + (y2 + y3) <= 4
    assert dual_value(_simplex(sig, b, w), sig, b, w) == pytest.approx(4.0)
