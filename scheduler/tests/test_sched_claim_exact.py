"""The cache (and Bind's replay of a node's other pods) counts a pod's allocation as its claim by one rule.

Whoever may edit a pod may write its allocation annotations and ``hami.io/bind-phase``. On main (34d0029) the cache
and the replay compared such an allocation with the pod's request by family only: a pod asking for 1 GPU of 1024 MiB
that marked itself binding with both GPUs of a node, whole, could never bind with that allocation, yet it filled the
node for every other pod. Now (``ClusterState.claim_refusal``): a bound pod counts as it is (the node agent hands out
what it holds; counting less would put two pods on one slice); a pod not yet bound counts only an allocation that is
exactly what its request gets (``hami_hal.engine.check_exact``, Bind's own rule), is refused once in the log and the
rejected list, and is not parsed again while it is unchanged.
"""

from __future__ import annotations

import logging

import pytest
from hami_scheduler import state
from hami_scheduler.extender import Extender
from hami_scheduler.state import ClusterState
from sched_testing import NVIDIA, gpu_node, gpu_pod, synced_stack

from hami_hal.errors import HalError

ALLOC = "hami.io/vgpu-devices-allocated"
WHOLE = "GPU-{n}-0,NVIDIA,40960,100:GPU-{n}-1,NVIDIA,40960,100:;"  # both GPUs of a 2-GPU node, whole


def _squatter(node: str, bound: bool, name: str = "squat") -> dict:
    """Asks for 1 GPU of 1024 MiB / 10 %, carries both GPUs whole and says it is binding (or is bound)."""
    pod = gpu_pod(name, gpus=1, mem=1024, cores=10)
    pod["metadata"]["annotations"] = {"hami.io/vgpu-node": node, "hami.io/bind-phase": "allocating",
                                      ALLOC: WHOLE.format(n=node)}
    pod["metadata"]["labels"] = {"hami.io/vgpu-node": node}  # how Bind's replay lists a node's unbound claims
    if bound:
        pod["spec"]["nodeName"] = node
    return pod


def _cache() -> tuple[ClusterState, Extender]:
    cluster = ClusterState([NVIDIA])
    cluster.upsert_node(gpu_node("good", gpus=2))
    return cluster, Extender(cluster)


def _whole_pair_fits(ext: Extender) -> bool:
    out = ext.filter({"Pod": gpu_pod("victim", gpus=2, mem=40960, cores=100), "NodeNames": ["good"]})
    return out.node_names == ["good"]


@pytest.mark.parametrize(("alloc", "why"), [
    (WHOLE.format(n="good"), "NVIDIA: '2 devices' but the container requests 1"),
    ("GPU-good-0,NVIDIA,40960,10:;", "memory of GPU-good-0: 40960 but the request gets 1024 MiB"),
    ("GPU-good-1,NVIDIA,1024,100:;", "cores of GPU-good-1: 100 but the request gets 10 %"),
])
def test_an_unbound_pod_with_an_oversized_allocation_does_not_block_the_node(alloc, why):
    cluster, ext = _cache()
    pod = _squatter("good", bound=False)
    pod["metadata"]["annotations"][ALLOC] = alloc
    with pytest.raises(HalError) as exc:
        cluster.upsert_pod(pod)
    assert why in str(exc.value) and "\n" not in str(exc.value)
    assert "default/squat" not in cluster.pods
    assert "not exactly what its request gets" in cluster.rejected["pod:default/squat"]
    assert _whole_pair_fits(ext)


def test_a_bound_pod_counts_its_allocation_in_full():
    """The fail-open side: a running pod holds what its annotation says (the device plugin enforced it)."""
    cluster, ext = _cache()
    cluster.upsert_pod(_squatter("good", bound=True))
    assert "default/squat" in cluster.claims
    held = [d.used_memory_mib for d in cluster.nodes["good"].state.devices.values()]
    assert held == [40960, 40960]
    assert not _whole_pair_fits(ext)


def test_an_exact_unbound_allocation_still_counts():
    """The rule keeps real reservations and binding pods: what Filter wrote counts."""
    cluster, ext = _cache()
    pod = gpu_pod("fair", gpus=2, mem=40960, cores=100)
    pod["metadata"]["annotations"] = {"hami.io/vgpu-node": "good", "hami.io/bind-phase": "allocating",
                                      ALLOC: WHOLE.format(n="good")}
    cluster.upsert_pod(pod)
    assert "default/fair" in cluster.claims and "pod:default/fair" not in cluster.rejected
    assert not _whole_pair_fits(ext)


def test_a_flood_of_events_for_one_bad_pod_parses_it_once(caplog, monkeypatch):
    cluster, _ = _cache()
    calls: list[str] = []
    decoded: list[str] = []
    decode = state.allocation_from_pod

    def counting_decode(pod: dict, *args):
        decoded.append(pod["metadata"]["name"])
        return decode(pod, *args)

    monkeypatch.setattr(state, "allocation_from_pod", counting_decode)
    parse = cluster.request_of
    assert parse is not None  # the Extender gave the cache its parse (admission included)

    def counting(pod: dict):
        calls.append(pod["metadata"]["name"])
        return parse(pod)

    cluster.request_of = counting
    bad, fair = _squatter("good", bound=False), gpu_pod("fair", gpus=1, mem=1024, cores=10)
    fair["metadata"]["annotations"] = {"hami.io/vgpu-node": "good", ALLOC: "GPU-good-1,NVIDIA,1024,10:;"}
    with caplog.at_level(logging.WARNING, logger="hami_scheduler.state"):
        for rv in range(200):  # a status, a label, a condition: every change hands the whole pod over again
            for pod in (bad, fair):
                pod["metadata"]["resourceVersion"] = str(rv)
                pod["status"] = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "reason": str(rv)}]}
                try:
                    cluster.upsert_pod(pod)
                except Exception:  # noqa: BLE001 - the watch records it; the count below is the check
                    pass
    assert calls == ["squat", "fair"] and decoded == ["squat", "fair"]
    assert [r.message for r in caplog.records].count(
        next(r.message for r in caplog.records if "default/squat" in r.message)) == 1
    assert "default/fair" in cluster.pods and "default/squat" not in cluster.pods
    bad["metadata"]["annotations"][ALLOC] = "GPU-good-0,NVIDIA,1024,10:;"  # fixed: counted, parsed once more
    cluster.upsert_pod(bad)
    assert calls == ["squat", "fair", "squat"] and "pod:default/squat" not in cluster.rejected


@pytest.fixture
def stack():
    with synced_stack(gpu_node("node1", gpus=2)) as s:
        yield s


def _filter_and_bind(stack, pod: dict) -> str:
    pod = stack.api.add_pod(pod)
    assert stack.extender.filter({"Pod": pod, "NodeNames": ["node1"]}).node_names == ["node1"]
    name = pod["metadata"]["name"]
    return stack.extender.bind({"PodName": name, "PodNamespace": "default", "PodUID": f"uid-{name}",
                                "Node": "node1"})


@pytest.mark.parametrize("bound", [False, True])
def test_bind_replay_skips_an_oversized_unbound_claim_and_counts_a_bound_one(stack, bound):
    """The squatter reaches the API after the cache's sync (watch off), so only Bind's replay meets it."""
    stack.api.add_pod(_squatter("node1", bound=bound))
    err = _filter_and_bind(stack, gpu_pod("victim", gpus=2, mem=40960, cores=100))
    if bound:
        assert "over-commit" in err, err
        assert not stack.api.bindings
    else:
        assert err == "", err
        assert stack.api.pods[("default", "victim")]["spec"]["nodeName"] == "node1"


def test_a_remembered_decode_is_never_another_pods_allocation():
    # the decode is remembered by value; a pod deleted and made again under its name, with the same allocation
    # annotations (a copy of its manifest), is a new pod: its allocation carries its own UID and container names
    cluster, _ = _cache()
    first = gpu_pod("twin", gpus=1, mem=1024, cores=10)
    first["metadata"]["annotations"] = {"hami.io/vgpu-node": "good", ALLOC: "GPU-good-1,NVIDIA,1024,10:;"}
    first["metadata"]["uid"] = "uid-1"
    first["spec"]["nodeName"] = "good"
    cluster.upsert_pod(first)
    assert cluster.pods["default/twin"].uid == "uid-1"
    cluster.forget_pod("default/twin")
    again = gpu_pod("twin", gpus=1, mem=1024, cores=10)
    again["metadata"]["annotations"] = dict(first["metadata"]["annotations"])
    again["metadata"]["uid"] = "uid-2"
    again["spec"]["nodeName"] = "good"
    again["spec"]["containers"][0]["name"] = "server"
    cluster.upsert_pod(again)
    held = cluster.pods["default/twin"]
    assert held.uid == "uid-2" and held.containers[0].name == "server", held
