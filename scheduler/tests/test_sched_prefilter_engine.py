"""One fit authority: the prefilter is built from the engine's predicates, so it is never stricter than
the engine, and a node it rejects carries the engine's own reason text."""

from __future__ import annotations

import numpy as np
from fuzz_profiles import FUZZ_MANY
from hami_scheduler.index import NodeIndex
from hypothesis import given
from hypothesis import strategies as st

from hami_hal.engine import NodeState
from hami_hal.models import (
    ContainerRequest,
    Device,
    DevicePolicy,
    PartitionKind,
    PartitionModel,
    PodRequest,
    Provenance,
    ResourceRequest,
)

MODELS = ["NVIDIA-Tesla T4", "NVIDIA-NVIDIA A100-PCIE-40GB"]


@st.composite
def devices(draw, node: str) -> list[Device]:
    out = []
    for i in range(draw(st.integers(1, 3))):
        mem = draw(st.sampled_from([1024, 15109, 40960, 81920]))
        part = PartitionModel(kind=PartitionKind.SHARES, memory_mib=mem, max_slots=draw(st.integers(1, 6)),
                              compute_percent=draw(st.sampled_from([100, 200])),
                              exclusive_full_compute=draw(st.booleans()),
                              memory_granularity_mib=draw(st.sampled_from([1, 256])))
        out.append(Device(vendor="nvidia", index=i, uuid=f"{node}-{i}", model=draw(st.sampled_from(MODELS)),
                          family=draw(st.sampled_from([None, None, "NVIDIA", "OTHER"])),
                          hami_type="NVIDIA", memory_mib=mem, healthy=draw(st.booleans()) or i > 0,
                          partition=part, provenance=Provenance(source="simulated", profile="prop")))
    return out


@st.composite
def requests(draw) -> ResourceRequest:
    whole = draw(st.booleans()) and draw(st.booleans())
    pct = draw(st.one_of(st.none(), st.integers(0, 100)))
    return ResourceRequest(
        vendor="nvidia", common_word="NVIDIA", count=draw(st.integers(1, 3)), whole_device=whole,
        memory_mib=None if pct is not None else draw(st.sampled_from([None, 0, 100, 1000, 4000, 15000, 50000])),
        memory_percent=pct, compute_percent=draw(st.sampled_from([0, 10, 30, 50, 99, 100, 100, 100])),
        policy=draw(st.sampled_from([DevicePolicy.SPREAD, DevicePolicy.BINPACK, DevicePolicy.MUTEX])),
        type_include=draw(st.sampled_from([[], ["T4"], ["a100"]])), type_exclude=draw(st.sampled_from([[], ["t4"]])),
    )


def _pod(name: str, reqs: list[ResourceRequest]) -> PodRequest:
    return PodRequest(name=name, containers=[ContainerRequest(name="main", index=0, requests=reqs)])


@st.composite
def nodes(draw, name: str) -> NodeState:
    devs = draw(devices(name))
    cordoned = [d.uuid for d in devs if draw(st.integers(0, 9)) == 0]
    state = NodeState(name, devs, cordoned=cordoned)
    for k in range(draw(st.integers(0, 6))):  # usage the engine itself put there
        fit = state.fit_pod(_pod(f"{name}-held-{k}", [draw(requests())]))
        if fit.ok:
            state.commit(fit.allocation)
    return state


@FUZZ_MANY  # 300 examples in make test; HAMI_FUZZ_PROFILE=fuzz-long runs 5,000
@given(st.lists(st.integers(), min_size=0, max_size=0), st.data())
def test_prefilter_never_stricter_than_engine_and_same_reason(_, data):
    states = [data.draw(nodes(f"n{i}")) for i in range(3)]
    reqs = data.draw(st.lists(requests(), min_size=1, max_size=2))
    pod = _pod("p", reqs)
    index = NodeIndex()
    for s in states:
        index.set_node(s.name, s)
    cand, reasons = index.prefilter(pod, np.arange(len(states)))
    for row, state in enumerate(states):
        fit = state.fit_pod(pod)
        if fit.ok:
            assert cand[row], f"prefilter rejected {state.name} the engine accepts: {reasons.get(row)}"
        elif not cand[row] and len(reqs) == 1:
            assert reasons[row] == fit.reason  # the engine's words, not a second rule set
