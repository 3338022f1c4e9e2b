"""frag-pack's scarcity term: strength from the constrained demand itself, no weight (issue #15 LOO)."""

from __future__ import annotations

import pytest
from hami_scheduler.policies import NodeView, PodShape, make_policy
from hami_scheduler.policies.frag_pack import SATURATED, model_scarcity, scarcity_pressure

#: Half the pods may only use T4; 10 T4 of 100 GPUs, so T4 demand far exceeds T4 capacity.
WL = [((1000, 1000, 1, ()), 0.5), ((1000, 1000, 1, ("T4",)), 0.5)]
CAP = {"T4": 10, "G2": 90}


def test_pressure_is_constrained_demand_per_milli_left_to_others():
    p = scarcity_pressure({"G2": 0.0, "V100": 0.5, "P100": 0.2, "T4": 1.0, "A10": 3.7})
    assert p["G2"] == 0.0
    assert p["V100"] == pytest.approx(1.0)
    assert p["P100"] == pytest.approx(0.25)
    assert p["T4"] == SATURATED and p["A10"] == SATURATED


def test_pressure_grows_with_the_constrained_share_not_with_a_weight():
    shares = [0.1, 0.3, 0.6, 0.9, 0.99]
    p = scarcity_pressure({str(s): s for s in shares})
    vals = [p[str(s)] for s in shares]
    assert vals == sorted(vals) and vals[-1] > 90 * vals[0]


def _nodes():
    return NodeView("t4", "T4", 64_000, 1 << 30, [1000] * 4), NodeView("g2", "G2", 64_000, 1 << 30, [1000] * 4)


def test_saturated_model_is_left_to_constrained_pods():
    pol = make_policy("frag-pack")
    pol.prepare(WL, {}, CAP)  # type: ignore[call-arg]
    assert model_scarcity(WL, CAP)["T4"] >= 1
    t4, g2 = _nodes()
    free_pod = PodShape(1000, 0, 1, 1000)
    # G2 half full (worse for FGD's measure than an empty T4 node) still beats the saturated T4 model.
    g2_busy = NodeView("g2b", "G2", 64_000, 1 << 30, [0, 0, 1000, 1000])
    assert pol.score(g2_busy, free_pod)[0] > pol.score(t4, free_pod)[0] + 0.5 * SATURATED
    # A pod that can only use T4 is not charged, and CPU-only pods are not either.
    t4_pod = PodShape(1000, 0, 1, 1000, ("T4",))
    assert pol.score(t4, t4_pod)[0] > -0.5 * SATURATED
    cpu_pod = PodShape(1000, 0, 0, 0)
    assert pol.score(t4, cpu_pod)[0] > -0.5 * SATURATED


def test_unconstrained_mix_has_no_scarcity_term():
    """Without gpu_spec classes the term is zero, so every unconstrained variant places as before."""
    pol = make_policy("frag-pack")
    pol.prepare([((1000, 1000, 1, ()), 1.0)], {}, CAP)  # type: ignore[call-arg]
    assert all(v == 0 for v in pol.scarcity.values())
