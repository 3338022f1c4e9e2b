"""The extender's fragmentation policies score against the workload the cluster runs now."""

from __future__ import annotations

from hami_scheduler.extender import Extender
from hami_scheduler.live_workload import WorkloadFeed, live_workload, pod_class
from hami_scheduler.policies import make_policy
from hami_scheduler.state import ClusterState
from sched_testing import NVIDIA, gpu_node, gpu_pod


def cluster(*nodes) -> ClusterState:
    c = ClusterState([NVIDIA])
    for n in nodes:
        c.upsert_node(n)
    return c


def hold(c: ClusterState, ext: Extender, node: str, pod: dict) -> None:
    """Put a pod on a given node through the engine, as if it had been bound there earlier."""
    fit = c.nodes[node].state.fit_pod(ext.parse(pod))
    assert fit.ok, fit.reason
    c.reserve(fit.allocation)


def test_pod_class_is_the_larger_of_compute_and_memory_share():
    c = cluster(gpu_node("n1", gpus=2, mem=40000))
    ext = Extender(c, None, policy="fgd")
    hold(c, ext, "n1", gpu_pod("two", gpus=2, mem=10000, cores=40))  # memory 250, compute 400
    hold(c, ext, "n1", gpu_pod("mem", gpus=1, mem=30000, cores=10))  # memory 750 wins
    got = {a.name: pod_class(a, c) for a in c.pods.values()}
    assert got == {"two": (0, 400, 2, ()), "mem": (0, 750, 1, ())}


def test_live_workload_popularity_and_capacity():
    c = cluster(gpu_node("n1", gpus=4, mem=40000), gpu_node("t", gpus=2, mem=15000, model="NVIDIA-Tesla T4"))
    ext = Extender(c, None, policy="fgd")
    for i in range(3):
        hold(c, ext, "n1", gpu_pod(f"h{i}", mem=20000, cores=50))
    hold(c, ext, "n1", gpu_pod("w", mem=40000, cores=100))
    wl, cap = live_workload(c)
    assert dict(wl) == {(0, 500, 1, ()): 0.75, (0, 1000, 1, ()): 0.25}
    assert cap == {"A100-PCIE-40GB": 4, "Tesla T4": 2}  # product names: the "NVIDIA-" family prefix of the HAMi type is dropped
    assert live_workload(cluster(gpu_node("e")))[0] == []


def test_feed_refreshes_only_when_due_and_changed():
    c = cluster(gpu_node("n1", gpus=2, mem=40000))
    ext = Extender(c, None, policy="fgd")
    feed = WorkloadFeed(make_policy("fgd"), refresh_s=10)
    assert feed.refresh(c, now=0.0) and feed.workload == []
    hold(c, ext, "n1", gpu_pod("a", mem=20000, cores=50))
    assert not feed.refresh(c, now=5.0)  # not due yet
    assert feed.refresh(c, now=10.0) and feed.workload == [((0, 500, 1, ()), 1.0)]
    assert not feed.refresh(c, now=30.0)  # due, but the same pods


def test_extender_fgd_uses_the_running_mix():
    # n1 idle; n2 holds a whole-GPU pod and a half-GPU pod. A new half pod completes n2's half GPU
    # under FGD only if FGD knows whole-GPU pods are part of the mix (a half-used GPU is then a fragment).
    def setup(refresh: float) -> Extender:
        c = cluster(gpu_node("n1", gpus=2, mem=40000), gpu_node("n2", gpus=2, mem=40000))
        ext = Extender(c, None, policy="fgd", workload_refresh_s=refresh)
        ext._feed.refresh(c)  # type: ignore[union-attr]  # primed while the cluster is empty
        hold(c, ext, "n2", gpu_pod("whole", mem=40000, cores=100))
        hold(c, ext, "n2", gpu_pod("half", mem=20000, cores=50))
        return ext

    args = {"Pod": gpu_pod("new", mem=20000, cores=50), "NodeNames": ["n1", "n2"]}
    assert setup(0.0).filter(args).node_names == ["n2"]
    # A feed not due for a refresh keeps the empty mix: FGD ties every node and takes the first.
    assert setup(1e9).filter(args).node_names == ["n1"]
