"""Two extenders with separate caches on one API server (two kube-schedulers, no leader election).

Liveness: once the node is full, both caches must know every pod bound to it, so each filter answers
"no fit" (the pod becomes Unschedulable) instead of choosing a full device that the bind-time replay
then refuses forever. The watch is driven by hand (events delivered to each cache when the test says),
so the interleaving that used to lose bound pods from one cache is replayed exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hami_scheduler.extender import Extender
from hami_scheduler.kube import Kube, Watcher, api_client, sync
from hami_scheduler.refusals import pod_key
from hami_scheduler.state import ClusterState
from sched_fakeapi import FakeApiServer
from sched_testing import NVIDIA, gpu_node, gpu_pod

MEM = 8192  # five pods fill one 40960 MiB device


@dataclass
class Scheduler:
    """One extender, its own cache, and a watch that delivers the API's events only when told to."""

    api: FakeApiServer
    cluster: ClusterState = field(init=False)
    ext: Extender = field(init=False)
    seen: int = 0

    def __post_init__(self) -> None:
        kube = Kube(api_client(self.api.url))
        self.cluster = ClusterState([NVIDIA])
        sync(kube, self.cluster)
        self.seen = self.api.rv
        self.ext = Extender(self.cluster, kube)
        self.watcher = Watcher(kube, self.cluster)

    def catch_up(self) -> None:
        """Apply every pod event since the last call, in order, as Watcher._loop does (a refused object
        is recorded in ``rejected`` and the watch goes on)."""
        with self.api.cond:
            evs = [e for e in self.api.events if e[0] > self.seen and e[1] == "pods"]
        for rv, _, etype, obj in evs:
            try:
                self.watcher._on_pod(etype, obj)
            except Exception as exc:  # noqa: BLE001 - mirrors the watch loop
                self.cluster.rejected[pod_key(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")] = str(exc)
            self.seen = rv

    def filter(self, name: str) -> list[str]:
        pod = self.api.pods[("default", name)]
        out = self.ext.filter({"Pod": pod, "NodeNames": ["n1"]})
        assert not out.error, out.error
        return out.node_names

    def bind(self, name: str) -> str:
        uid = self.api.pods[("default", name)]["metadata"]["uid"]
        return self.ext.bind({"PodName": name, "PodNamespace": "default", "PodUID": uid, "Node": "n1"})


@pytest.fixture
def api():
    server = FakeApiServer().start()
    server.add_node(gpu_node("n1", gpus=1, mem=40960))
    yield server
    server.stop()


def bound_on_api(api: FakeApiServer) -> set[str]:
    return {f"{ns}/{n}" for (ns, n), p in api.pods.items() if (p.get("spec") or {}).get("nodeName") == "n1"}


def test_full_node_ends_unschedulable_in_both_caches(api):
    a, b = Scheduler(api), Scheduler(api)
    for i in range(6):
        api.add_pod(gpu_pod(f"a{i}", mem=MEM, cores=10))
        api.add_pod(gpu_pod(f"b{i}", mem=MEM, cores=10))
    for i in range(4):  # A places four pods; both caches see them
        assert a.filter(f"a{i}") == ["n1"] and a.bind(f"a{i}") == ""
    a.catch_up()
    b.catch_up()
    # A reserves the last slice; before B's watch delivers that, B places its own pod on it and binds first
    assert a.filter("a4") == ["n1"]
    assert b.filter("b0") == ["n1"] and b.bind("b0") == ""
    a.catch_up()
    b.catch_up()
    # the API is the truth at bind time: A's reservation is refused (safety) ...
    assert "over-commit" in a.bind("a4")
    a.catch_up()
    b.catch_up()
    truth = bound_on_api(api)
    assert truth == {"default/a0", "default/a1", "default/a2", "default/a3", "default/b0"}
    # ... and both caches hold exactly the five bound pods, each a claim, none of them refused
    for s in (a, b):
        assert set(s.cluster.pods) == truth
        assert s.cluster.claims == truth
        assert not {pod_key(k) for k in truth} & set(s.cluster.rejected), s.cluster.rejected
    # liveness: every further pod gets "no fit" from its filter (kube-scheduler marks it Unschedulable)
    # instead of a node whose bind the replay refuses
    assert a.filter("a5") == []
    assert b.filter("b1") == []


def test_refused_bind_teaches_the_cache_what_the_api_holds(api):
    """Whatever made a cache miss a bound pod (here: the watch events of B's bind never reach A), the
    bind-time replay's refusal re-reads the node's claims into the cache, so it is refused once, not forever."""
    a, b = Scheduler(api), Scheduler(api)
    for i in range(6):
        api.add_pod(gpu_pod(f"a{i}", mem=MEM, cores=10))
        api.add_pod(gpu_pod(f"b{i}", mem=MEM, cores=10))
    for i in range(4):
        assert a.filter(f"a{i}") == ["n1"] and a.bind(f"a{i}") == ""
    a.catch_up()
    b.catch_up()
    assert b.filter("b0") == ["n1"] and b.bind("b0") == ""
    a.seen = api.rv  # A's watch loses B's events
    assert "default/b0" not in a.cluster.pods
    assert a.filter("a4") == ["n1"]  # A's stale view: one slice left
    assert "over-commit" in a.bind("a4")
    assert "default/b0" in a.cluster.pods and "default/b0" in a.cluster.claims
    assert "default/a4" not in a.cluster.pods  # the refused pod's reservation is given back
    assert a.filter("a5") == []  # the next filter sees the node as the API does
    # what the replay re-read changes nothing the watch would not: A's cache matches B's (caught-up) view
    a.catch_up()
    b.catch_up()
    assert a.cluster.snapshot()["usage"] == b.cluster.snapshot()["usage"]
