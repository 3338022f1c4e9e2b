"""The vectorised prefilter is only a necessary condition: it never rejects a node the engine accepts,
and the reasons it gives for rejected nodes match the engine's HAMi-style text."""

from __future__ import annotations

import numpy as np
from hami_scheduler.state import ClusterState
from hypothesis import given, settings
from hypothesis import strategies as st
from sched_testing import NVIDIA, gpu_node, gpu_pod

from hami_hal.requests import parse_pod

REQ = st.tuples(st.integers(1, 3), st.one_of(st.none(), st.integers(1, 20000)), st.one_of(st.none(), st.integers(0, 100)),
                st.sampled_from([None, "A100", "T4", "V100"]))


@settings(max_examples=40, deadline=None)
@given(fill=st.lists(REQ, max_size=10), probe=REQ, unhealthy=st.integers(0, 3))
def test_prefilter_is_necessary_and_reasons_match(fill, probe, unhealthy):
    cluster = ClusterState([NVIDIA])
    models = ["NVIDIA-A100-PCIE-40GB", "NVIDIA-Tesla T4", "NVIDIA-Tesla V100"]
    for i in range(3):
        node = gpu_node(f"n{i}", gpus=3, mem=16000 + 8000 * i, count=2 + i, model=models[i])
        if i == unhealthy:
            import json

            devs = json.loads(node["metadata"]["annotations"]["hami.io/node-nvidia-register"])
            devs[0]["health"] = False
            node["metadata"]["annotations"]["hami.io/node-nvidia-register"] = json.dumps(devs)
        cluster.upsert_node(node)
    for k, (g, mem, cores, typ) in enumerate(fill):
        anns = {"nvidia.com/use-gputype": typ} if typ else {}
        req = parse_pod(gpu_pod(f"f{k}", gpus=g, mem=mem, cores=cores, annotations=anns), [NVIDIA])
        for name in ("n0", "n1", "n2"):
            fit = cluster.nodes[name].state.fit_pod(req)
            if fit.ok:
                cluster.reserve(fit.allocation)
                break
    g, mem, cores, typ = probe
    anns = {"nvidia.com/use-gputype": typ} if typ else {}
    req = parse_pod(gpu_pod("probe", gpus=g, mem=mem, cores=cores, annotations=anns), [NVIDIA])
    rows = np.arange(3)
    cand, reasons = cluster.index.prefilter(req, rows)
    for r in range(3):
        fit = cluster.nodes[f"n{r}"].state.fit_pod(req)
        if fit.ok:
            assert cand[r], "prefilter rejected a node the engine accepts"
        if r in reasons:
            assert not fit.ok
            assert reasons[r] == fit.reason
