"""The simulator's rule for equal node scores, pinned on a small hand-made cluster.

The FGD paper's simulator resolves equal-best nodes in a per-seed random node order (docs/scheduler.md
§3 "Baselines and the tie rule"). GpuClustering and GpuPacking score a CPU-only pod 0 on every node,
so where such pods go is decided by that rule alone: they fill one node after another in the run's
node order.
"""

from __future__ import annotations

import random

import pytest
from hami_scheduler.policies import PodShape, make_policy
from hami_scheduler.policies.base import NodeView
from hami_scheduler.policies.baselines import GpuPackingPolicy
from hami_scheduler.sim.cluster import SimCluster, tie_rank
from hami_scheduler.sim.trace import TraceNode

CPU_ONLY = PodShape(cpu=6000, mem=1000, num_gpu=0, milli=0)


def _nodes() -> tuple[TraceNode, ...]:
    # Four identical 2-GPU nodes with 16 cores: two 6-core CPU-only pods fit per node, not three.
    return tuple(TraceNode(f"n{i}", 16000, 65536, 2, "T4") for i in range(4))


def _cluster(policy: str, seed: int, tie_break: str = "node-order") -> SimCluster:
    pol = make_policy(policy)
    pol.prepare([((6000, 0, 0, ()), 0.5), ((4000, 500, 1, ()), 0.5)])
    return SimCluster(_nodes(), pol, random.Random(seed), tie_break)


@pytest.mark.parametrize("policy", ["clustering", "packing"])
def test_cpu_only_pods_fill_nodes_in_the_seeds_node_order(policy):
    cluster = _cluster(policy, seed=7)
    order = [int(i) for i in sorted(range(4), key=lambda i: cluster.rank[i])]
    assert order != [0, 1, 2, 3]  # seed 7 shuffles: list order would give another placement
    placed = [cluster.schedule(CPU_ONLY) for _ in range(8)]
    # Two per node (the third no longer fits the CPU), node after node in the run's order.
    assert placed == [order[0], order[0], order[1], order[1], order[2], order[2], order[3], order[3]]
    assert cluster.schedule(CPU_ONLY) is None


def test_node_order_is_a_permutation_that_changes_with_the_seed():
    orders = {tuple(tie_rank(50, "node-order", random.Random(s))) for s in (42, 43, 44)}
    assert len(orders) == 3
    assert all(sorted(o) == list(range(50)) for o in orders)
    # Same seed, same order: a run is reproducible.
    assert tuple(tie_rank(50, "node-order", random.Random(42))) in orders
    assert list(tie_rank(5, "first", random.Random(42))) == [0, 1, 2, 3, 4]


def test_first_rule_keeps_list_order():
    cluster = _cluster("packing", seed=7, tie_break="first")
    assert [cluster.schedule(CPU_ONLY) for _ in range(3)] == [0, 0, 1]


def test_unknown_tie_rule_is_named():
    with pytest.raises(ValueError, match="tie_break: 'best'"):
        _cluster("packing", seed=1, tie_break="best")


def test_gpu_packing_bands_follow_the_papers_simulator():
    pol = GpuPackingPolicy()
    share = PodShape(2000, 0, 1, 300)
    whole2 = PodShape(2000, 0, 2, 1000)
    idle8 = NodeView("a", "G2", 96000, 1 << 30, [1000] * 8)
    # Idle node: 33 − GPUs on the node.
    assert pol.score(idle8, share)[0] == 25
    # Partly used node, the pod needs fully free GPUs: 50 − GPUs it takes (not how many stay idle).
    part = NodeView("b", "G2", 96000, 1 << 30, [200, 1000, 1000, 1000, 1000, 1000, 1000, 1000])
    assert pol.score(part, share)[0] == 49
    assert pol.score(part, whole2)[0] == 48
    # Fits on a shared GPU: 100 − (free % of the GPU it takes) / 10, best-fit GPU.
    shared = NodeView("c", "G2", 96000, 1 << 30, [350, 900, 1000, 1000])
    score, gpus = pol.score(shared, share)
    assert (score, gpus) == (97, (0,))
    # Integer arithmetic, as the simulator's: 359 free milli -> 35 % -> 35 // 10 = 3 -> 97
    # (real division would give 100 - 3.59 -> 96).
    odd = NodeView("d", "G2", 96000, 1 << 30, [359, 1000])
    assert pol.score(odd, share) == (97, (0,))
    # A shared GPU that is 99 % free still beats any fully free GPU (91 > 49).
    nearly_free = NodeView("e", "G2", 96000, 1 << 30, [990, 1000])
    assert pol.score(nearly_free, share)[0] == 91
    # CPU-only pods score 0 everywhere.
    assert pol.score(idle8, CPU_ONLY)[0] == 0
