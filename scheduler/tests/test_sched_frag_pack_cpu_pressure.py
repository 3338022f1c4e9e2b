"""frag-pack under CPU pressure: the capacity-aware weight grows with the CPU overcommit ρ − 1, and a
cluster whose CPU suffices (ρ < 1, every public variant) gets exactly the score it had before (issue #15)."""

from __future__ import annotations

import pytest
from hami_scheduler.live_workload import WorkloadFeed, cluster_cpu
from hami_scheduler.policies import NodeView, PodShape, make_policy
from hami_scheduler.policies.frag_pack import (
    OVERCOMMIT_WEIGHT,
    FragPackPolicy,
    cpu_pressure,
    pack_weight_under,
)
from hami_scheduler.state import ClusterState
from sched_testing import NVIDIA, gpu_node

#: Half whole-GPU pods with 8 cores, half CPU-only pods with 8 cores: 16,000 CPU milli per 1,000 GPU milli.
WL = [((8000, 1000, 1, ()), 0.5), ((8000, 0, 0, ()), 0.5)]
CAP = {"A100": 10}  # 10 GPUs: 10 GPU pods and, on average, 10 CPU-only pods → 160 cores by then


def test_rho_is_expected_cpu_by_the_time_the_gpus_have_arrived_over_cluster_cpu():
    assert cpu_pressure(WL, CAP, 160_000) == pytest.approx(1.0)
    assert cpu_pressure(WL, CAP, 320_000) == pytest.approx(0.5)
    assert cpu_pressure(WL, {"A100": 20}, 160_000) == pytest.approx(2.0)
    # Unknown CPU, no GPU classes or no GPUs: no pressure estimate.
    assert cpu_pressure(WL, CAP, None) is None
    assert cpu_pressure(WL, CAP, 0) is None
    assert cpu_pressure([((8000, 0, 0, ()), 1.0)], CAP, 160_000) is None
    assert cpu_pressure(WL, {}, 160_000) is None


def test_weight_is_exactly_pack_weight_while_cpu_suffices():
    for rho in (None, 0.0, 0.7, 0.96, 0.999999):
        assert pack_weight_under(rho, 0.1, 20.0) == 0.1
    assert pack_weight_under(1.0, 0.1, 20.0) == 0.1
    assert pack_weight_under(1.06, 0.1, 20.0) == pytest.approx(1.3)
    ws = [pack_weight_under(r, 0.1, 20.0) for r in (1.0, 1.05, 1.1, 1.2)]
    assert ws == sorted(ws) and ws[-1] > ws[0]


NODES = [NodeView("a", "A100", 64_000, 1 << 20, [1000, 1000, 500, 0]),
         NodeView("b", "A100", 12_000, 1 << 20, [1000, 1000, 1000, 1000]),
         NodeView("c", "A100", 96_000, 1 << 20, [300, 1000, 0, 0])]
PODS = [PodShape(8000, 0, 1, 1000), PodShape(8000, 0, 0, 0), PodShape(4000, 0, 1, 500)]


def _scores(pol) -> list:
    return [pol.score(n, p) for n in NODES for p in PODS]


def test_scores_without_pressure_equal_the_old_score():
    old = FragPackPolicy(overcommit_weight=0.0)
    old.prepare(WL, {}, CAP)
    new = make_policy("frag-pack")
    new.prepare(WL, {}, CAP, 320_000)  # type: ignore[call-arg]  # ρ = 0.5
    assert new.pack_now == new.pack_weight  # type: ignore[attr-defined]
    assert _scores(new) == _scores(old)
    unknown = make_policy("frag-pack")
    unknown.prepare(WL, {}, CAP)  # type: ignore[call-arg]  # no cluster CPU: as before
    assert _scores(unknown) == _scores(old)


def test_scores_under_pressure_weight_the_capacity_aware_term_more():
    pol = make_policy("frag-pack")
    pol.prepare(WL, {}, CAP, 100_000)  # type: ignore[call-arg]  # ρ = 1.6
    assert pol.rho == pytest.approx(1.6)  # type: ignore[attr-defined]
    assert pol.pack_now == pytest.approx(0.1 + OVERCOMMIT_WEIGHT * 0.6)  # type: ignore[attr-defined]
    old = FragPackPolicy(overcommit_weight=0.0)
    old.prepare(WL, {}, CAP, 100_000)
    assert _scores(pol) != _scores(old)


def _node(name: str, cpu: str | None) -> dict:
    n = gpu_node(name, gpus=2)
    if cpu is not None:
        n["status"] = {"allocatable": {"cpu": cpu, "memory": "64Gi", "pods": "110"}}
    return n


def test_live_cluster_cpu_is_allocatable_over_device_nodes_or_unknown():
    c = ClusterState([NVIDIA])
    assert cluster_cpu(c) is None  # no node
    c.upsert_node(_node("n1", "16"))
    c.upsert_node(_node("n2", "8000m"))
    assert cluster_cpu(c) == 24_000
    c.upsert_node(_node("n3", None))  # one node without allocatable: a partial sum would overstate ρ
    assert cluster_cpu(c) is None


def test_feed_passes_the_cluster_cpu_in_seed_mode_and_live_mode():
    from hami_scheduler.live_workload import SeedMix

    c = ClusterState([NVIDIA])
    c.upsert_node(_node("n1", "4"))  # 2 GPUs, 4 cores; the seed mix asks 16 cores per GPU → ρ = 8
    pol = make_policy("frag-pack")
    feed = WorkloadFeed(pol, refresh_s=0, seed=SeedMix(WL, {}, "test"), takeover=100)
    assert feed.refresh(c, now=0.0) and feed.mode == "seed:test"
    assert pol.rho == pytest.approx(8.0)  # type: ignore[attr-defined]
    c.upsert_node(_node("n1", "64"))  # more CPU: a feed prepared now sees ρ = 0.5
    again = make_policy("frag-pack")
    assert WorkloadFeed(again, refresh_s=0, seed=SeedMix(WL, {}, "test")).refresh(c, now=0.0)
    assert again.rho == pytest.approx(0.5)  # type: ignore[attr-defined]
    live = WorkloadFeed(make_policy("frag-pack"), refresh_s=0, seed=None)
    assert live.refresh(c, now=0.0) and live.mode == "live"
    assert live.policy.rho is None  # type: ignore[attr-defined]  # no held pods: no mix, no estimate
