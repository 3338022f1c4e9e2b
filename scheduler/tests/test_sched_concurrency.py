"""Property: however filters, binds and deletions interleave across threads and two schedulers,
no device slice is ever handed out twice (the API's bound pods never over-commit a device)."""

from __future__ import annotations

import threading

from hami_scheduler.annotations import allocation_from_pod, parse_node
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_fakeapi import FakeApiServer
from sched_testing import NVIDIA, gpu_node, gpu_pod, start_stack

from hami_hal.engine import NodeState

POD = st.tuples(st.integers(1, 2), st.integers(1000, 30000), st.integers(0, 100), st.integers(0, 1))


def _check_api(api: FakeApiServer) -> int:
    """Replay every bound pod into fresh engine states; commit raises on any over-commit."""
    states = {n: NodeState.from_inventory(parse_node(obj, [NVIDIA])) for n, obj in api.nodes.items()}
    bound = 0
    for pod in api.pods.values():
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            continue
        inv = parse_node(api.nodes[node], [NVIDIA])
        alloc = allocation_from_pod(pod, [NVIDIA], {d.uuid: d for d in inv.devices})
        assert alloc is not None and alloc.node == node
        states[node].commit(alloc)  # AllocationError = a slice given twice
        bound += 1
    return bound


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods=st.lists(POD, min_size=4, max_size=12), deletes=st.lists(st.integers(0, 11), max_size=3))
def test_no_slice_double_allocated_under_concurrency(pods, deletes):
    api = FakeApiServer().start()
    api.add_node(gpu_node("n1", gpus=2, count=3))
    api.add_node(gpu_node("n2", gpus=2, count=3))
    a = start_stack(api, watch=True)
    b = start_stack(api, watch=False)  # a second scheduler with a cache that is never refreshed
    try:
        for i, (g, mem, cores, _) in enumerate(pods):
            api.add_pod(gpu_pod(f"p{i}", gpus=g, mem=mem, cores=cores))

        def work(i: int, g, mem, cores, who) -> None:
            stack = a if who == 0 else b
            pod = api.pods[("default", f"p{i}")]
            res = stack.extender.filter({"Pod": pod, "NodeNames": ["n1", "n2"]})
            if res.node_names:
                stack.extender.bind({"PodName": f"p{i}", "PodNamespace": "default", "PodUID": f"uid-p{i}",
                                     "Node": res.node_names[0]})
            if i in deletes and ("default", f"p{i}") in api.pods:
                api.delete_pod("default", f"p{i}")

        threads = [threading.Thread(target=work, args=(i, *p)) for i, p in enumerate(pods)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        bound = _check_api(api)
        assert bound == len(api.bindings) - sum(1 for d in set(deletes) if d < len(pods)
                                                 and any(x[1] == f"p{d}" for x in api.bindings))
    finally:
        a.stop()
        b.stop()
