"""frag-pack's stranding and dead-gap terms: the measures themselves and the choices they change."""

from __future__ import annotations

from hami_scheduler.policies import PodShape, make_policy
from hami_scheduler.policies.base import NodeView
from hami_scheduler.policies.frag import cpu_per_gpu_milli, dead_gap_table, stranded_gpu
from hami_scheduler.policies.frag_pack import FragPackPolicy

#: 8 cores per whole GPU, 4 per half GPU, plus CPU-only pods of 12 cores.
WORKLOAD = [((8000, 1000, 1, ()), 0.4), ((4000, 500, 1, ()), 0.4), ((12000, 0, 0, ()), 0.2)]


def test_kappa_is_cpu_per_gpu_milli_of_the_gpu_classes_only():
    # (0.4*8000 + 0.4*4000) / (0.4*1000 + 0.4*500) = 8 CPU milli per GPU milli; CPU-only pods excluded.
    assert cpu_per_gpu_milli(WORKLOAD) == 8.0
    assert cpu_per_gpu_milli([((12000, 0, 0, ()), 1.0)]) is None
    assert cpu_per_gpu_milli([]) is None


def test_stranded_gpu_is_idle_gpu_beyond_what_spare_cpu_can_feed():
    assert stranded_gpu(16000, 2000, 8.0) == 0.0  # 16 cores feed exactly two GPUs
    assert stranded_gpu(4000, 2000, 8.0) == 1500.0  # 4 cores feed half a GPU
    assert stranded_gpu(0, 0, 8.0) == 0.0
    assert stranded_gpu(0, 2000, None) == 0.0  # no GPU workload known: no term


def test_dead_gap_table_follows_the_common_sizes():
    table = dead_gap_table([((1, 650, 1, ()), 0.5), ((1, 320, 1, ()), 0.49), ((1, 50, 1, ()), 0.01)])
    assert table[350] == 30  # a 320 closes it
    assert table[120] == 120  # nothing common fits; the 50s are 1 % of sharing pods, under 3 %
    assert table[1000] == 30  # 650 + 320
    assert table[680] == 30 and table[360] == 40 and table[0] == 0
    assert dead_gap_table([((1, 1000, 1, ()), 1.0)]) == []  # no sharing sizes: no term


def test_dead_gap_sizes_count_by_share_of_sharing_pods_over_all_classes():
    # 320s come in two CPU classes of 0.02 each: 0.04 of 0.50 sharing mass = 8 % of sharing pods.
    split = [((1, 650, 1, ()), 0.46), ((4000, 320, 1, ()), 0.02), ((8000, 320, 1, ()), 0.02), ((1, 1000, 1, ()), 0.5)]
    assert dead_gap_table(split)[350] == 30
    assert dead_gap_table(split, min_share=0.1)[350] == 350  # 8 % < 10 %
    # Each class alone is 4 % of sharing pods: summing them is what lets 320 pass a 5 % threshold.
    assert dead_gap_table(split, min_share=0.05)[350] == 30
    assert dead_gap_table([split[0], split[1]], min_share=0.05)[350] == 350  # one class: 0.02 / 0.48 = 4.2 %
    # Whole-GPU pods do not dilute the share: the same sharing mix with no whole pods gives the same table.
    assert dead_gap_table(split[:3]) == dead_gap_table(split)


def _policy(**weights) -> FragPackPolicy:
    pol = FragPackPolicy(**weights)
    pol.prepare(WORKLOAD, {}, {"X": 4})
    return pol


def test_cpu_only_pod_goes_where_it_strands_no_gpu():
    cpu_rich = NodeView("rich", "X", 100_000, 1 << 30, [1000, 1000])
    cpu_poor = NodeView("poor", "X", 20_000, 1 << 30, [1000, 1000])
    pod = PodShape(12_000, 0, 0, 0)
    # FGD's ΔF is 0 on both (every class still fits once); the capacity term is switched off to
    # show the stranding term alone. Without it best fit picks the CPU-poor node (least left over),
    # where 8 cores remain for two idle GPUs that need 16.
    with_term, without = _policy(pack_weight=0.0), _policy(pack_weight=0.0, strand_weight=0.0)
    assert without.score(cpu_poor, pod)[0] > without.score(cpu_rich, pod)[0]
    assert with_term.score(cpu_rich, pod)[0] > with_term.score(cpu_poor, pod)[0]


def test_sharing_pod_keeps_a_closable_gap():
    wl = [((0, 650, 1, ()), 0.3), ((0, 470, 1, ()), 0.3), ((0, 320, 1, ()), 0.2), ((0, 230, 1, ()), 0.2)]
    pol, plain = FragPackPolicy(dead_weight=5.0), FragPackPolicy(dead_weight=0.0)
    for p in (pol, plain):
        p.prepare(wl, {}, {"X": 2})
    node = NodeView("n", "X", 0, 1 << 30, [350, 530])  # a 650 and a 470 placed
    pod = PodShape(0, 0, 1, 230)
    # 230 into 350 leaves 120, which nothing common closes; into 530 leaves 300 (a 230 closes it to 70).
    assert plain.score(node, pod)[1] == (0,)
    assert pol.score(node, pod)[1] == (1,)


def test_extender_policy_without_workload_scores_without_the_new_terms():
    pol = make_policy("frag-pack")
    pol.prepare([], None)
    res = pol.score(NodeView("n", "X", 8000, 1 << 30, [1000]), PodShape(1000, 0, 1, 500))
    assert res is not None and res[1] == (0,)
