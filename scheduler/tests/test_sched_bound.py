"""The offline upper bound is never below the true optimum (brute force on tiny instances) and binds
where CPU strands GPU and where shares cannot be packed into single GPUs."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from hami_scheduler.sim.bound import build, gpu_upper_bound, knapsack, lagrangian_bound, pod_classes
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


def random_instance(seed: int, shares: tuple[int, ...] = (200, 500, 700, 1000)) -> tuple[list, list]:
    rng = random.Random(seed)
    models = ("A", "B")
    nodes = [TraceNode(f"n{j}", rng.choice((2000, 4000, 8000)), rng.choice((2000, 8000)), rng.choice((1, 2, 2, 4)),
                       rng.choice(models)) for j in range(rng.randint(1, 3))]
    pods = []
    for i in range(rng.randint(2, 6)):
        num = rng.choice((1, 1, 1, 2))
        milli = 1000 if num > 1 else rng.choice(shares)
        pods.append(TracePod(f"p{i}", rng.choice((500, 1000, 3000, 6000)), rng.choice((100, 1000, 4000)),
                             num, milli, (rng.choice(models),) if rng.random() < 0.3 else ()))
    return nodes, pods


@pytest.mark.parametrize("seed", range(25))
def test_bound_is_never_below_the_optimum(seed):
    nodes, pods = random_instance(seed)
    opt = brute_force(nodes, pods)
    ub = gpu_upper_bound(nodes, pods)
    assert ub >= opt - 1e-6
    assert ub <= min(sum(p.gpu_request_milli for p in pods), 1000 * sum(n.gpus for n in nodes)) + 1e-6


@pytest.mark.parametrize("seed", range(25, 45))
def test_bound_with_many_share_sizes_is_never_below_the_optimum(seed):
    nodes, pods = random_instance(seed, (110, 230, 320, 470, 550, 650, 810))
    assert gpu_upper_bound(nodes, pods) >= brute_force(nodes, pods) - 1e-6


def test_large_shares_cannot_share_a_gpu():
    """Four 600-milli pods on two GPUs: aggregate capacity (2000) admits three, one GPU holds one."""
    nodes = [TraceNode("a", 64000, 64000, 2, "A")]
    pods = [TracePod(f"p{i}", 100, 1, 1, 600) for i in range(4)]
    opt = brute_force(nodes, pods)
    assert opt == 1200
    assert opt <= gpu_upper_bound(nodes, pods) <= 1200 + 1


def test_share_packing_binds_with_mixed_sizes():
    """810 + 470 + 470 + 230 on two GPUs: 810 leaves 190 (nothing fits), 470+470 fit one GPU: optimum 1750.
    The aggregate rows allowed 1980 (all demand); the pattern LP's fractional optimum is 1777.5."""
    nodes = [TraceNode("a", 64000, 64000, 2, "A")]
    pods = [TracePod("big", 100, 1, 1, 810), TracePod("x", 100, 1, 1, 470), TracePod("y", 100, 1, 1, 470),
            TracePod("z", 100, 1, 1, 230)]
    opt = brute_force(nodes, pods)
    assert opt == 1750
    assert opt <= gpu_upper_bound(nodes, pods) <= 1777.5 + 1


def test_share_rows_and_model_rows_bind_together():
    """Shares pinned to model A (one GPU) cannot move to model B's GPU."""
    nodes = [TraceNode("a", 64000, 64000, 1, "A"), TraceNode("b", 64000, 64000, 1, "B")]
    pods = [TracePod("x", 100, 1, 1, 700, ("A",)), TracePod("y", 100, 1, 1, 700, ("A",)),
            TracePod("z", 100, 1, 1, 400, ())]
    opt = brute_force(nodes, pods)
    assert opt == 1100
    assert opt <= gpu_upper_bound(nodes, pods) <= 1100 + 1


@pytest.mark.parametrize("seed", range(10))
def test_every_multiplier_gives_a_bound(seed):
    """Lagrangian duality, numerically: random λ, π ≥ 0 never give less than the brute-force optimum."""
    nodes, pods = random_instance(seed + 100, (110, 230, 470, 650, 810))
    rel = build(tuple(nodes), pod_classes(pods))
    opt = brute_force(nodes, pods)
    rng = np.random.default_rng(seed)
    for _ in range(30):
        lam = rng.uniform(0, 2, len(rel.rhs)) * rng.integers(0, 2, len(rel.rhs))
        pi = rng.uniform(0, 1200, (len(rel.atoms), len(rel.sizes)))
        assert lagrangian_bound(rel, lam, pi) >= opt - 1e-6


def test_knapsack_is_exact():
    """The pattern pricing: best multiset of sizes within 1000, checked against enumeration."""
    values = {230: 300.0, 470: 500.0, 810: 810.0, 110: 100.0}
    best = 0.0
    for a in itertools.product(range(10), range(3), range(2), range(10)):
        if 230 * a[0] + 470 * a[1] + 810 * a[2] + 110 * a[3] <= 1000:
            best = max(best, 300 * a[0] + 500 * a[1] + 810 * a[2] + 100 * a[3])
    value, pattern = knapsack(values)
    assert value == pytest.approx(best)
    assert sum(s * n for s, n in pattern.items()) <= 1000
    assert sum(values[s] * n for s, n in pattern.items()) == pytest.approx(best)


@pytest.mark.parametrize("limits", [(2, 48, 16), (500, 2, 16), (1, 1, 0)])
@pytest.mark.parametrize("seed", range(200, 210))
def test_coarsened_lists_still_bound_the_optimum(monkeypatch, limits, seed):
    """Above the LP's size limits pods merge (least CPU/memory/share, largest GPU): still never below."""
    from hami_scheduler.sim import bound

    monkeypatch.setattr(bound, "MAX_CLASSES", limits[0])
    monkeypatch.setattr(bound, "MAX_SIZES", limits[1])
    monkeypatch.setattr(bound, "MAX_ATOMS", limits[2])
    monkeypatch.setattr(bound, "SHARE_GRID", 300)
    nodes, pods = random_instance(seed, (110, 230, 470, 650, 810))
    counter = pod_classes(pods)
    classes, _counts, _members = bound.coarsen(counter, len({n.model for n in nodes}))
    assert len(classes) <= max(limits[0], 0) or not classes
    ub = bound._bound_for.__wrapped__(tuple(nodes), frozenset(counter.items()))
    assert ub >= brute_force(nodes, pods) - 1e-6
    assert ub <= min(sum(p.gpu_request_milli for p in pods), 1000 * sum(n.gpus for n in nodes)) + 1e-6


def test_a_list_too_large_to_coarsen_keeps_the_trivial_bound(monkeypatch):
    from hami_scheduler.sim import bound

    monkeypatch.setattr(bound, "MAX_CLASSES", 0)
    nodes = [TraceNode("a", 64000, 64000, 2, "A")]
    pods = [TracePod(f"p{i}", 100, 1, 1, 600) for i in range(4)]
    assert bound._bound_for.__wrapped__(tuple(nodes), frozenset(pod_classes(pods).items())) == 2000


def test_the_bound_binds_on_the_trace_and_caps_a_policy():
    """On openb `default` at 100 % arrival the share rows pull the bound below full allocation (the
    aggregate LP said 100 %), and a real policy run of the same pods stays under it."""
    from hami_scheduler.sim.run import prepare_run, shape_of
    from hami_scheduler.sim.trace import default_trace_dir, missing_files
    from sched_trace_skip import TRACE_SKIP_REASON

    trace = default_trace_dir()
    if missing_files(trace, ("default",)):
        pytest.skip(TRACE_SKIP_REASON)
    nodes, order, cluster = prepare_run(str(trace), "default", "bestfit", 42)
    capacity = 1000 * sum(n.gpus for n in nodes)
    arrived = used = 0
    prefix = []
    for pod in order:
        if arrived + pod.gpu_request_milli > capacity:
            break
        arrived += pod.gpu_request_milli
        prefix.append(pod)
        if cluster.schedule(shape_of(pod)) is not None:
            used += pod.gpu_request_milli
    ub = gpu_upper_bound(tuple(nodes), prefix)
    assert used <= ub < 0.99 * capacity
