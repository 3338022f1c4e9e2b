"""Leader gate (refuse or forward as a follower) and pod-event wrapping, on the fake API server stack.

The Lease election itself runs against a real kube-apiserver in tests/e2e/test_e2e_leader.py.
"""

from __future__ import annotations

import argparse
import json
import urllib.request

import pytest
from hami_scheduler.events import EventingExtender, failed_message
from hami_scheduler.leader import LeaderGate, LeaseElector, with_leader_election
from hami_scheduler.server import ExtenderServer
from sched_testing import gpu_node, gpu_pod, start_stack

from hami_hal.errors import HalError, InputError


class StubElector:
    def __init__(self, leading: bool, leader_url: str = "", url: str = "http://me:1") -> None:
        self.leading, self.leader_url, self.url = leading, leader_url, url
        self.identity, self.holder, self.namespace, self.name = "me", "other", "ns", "lease"

    def is_leader(self) -> bool:
        return self.leading


class StubRecorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def record(self, ns, pod, uid, kind, reason, message) -> None:
        self.events.append((ns, pod, kind, reason, message))


@pytest.fixture
def stack():
    st = start_stack()
    st.api.add_node(gpu_node("n1", gpus=2))
    st.api.add_node(gpu_node("n2", gpus=2))
    st.watcher.stop.set()
    from hami_scheduler.kube import sync

    sync(st.kube, st.cluster)
    yield st
    st.stop()


def filter_args(pod: dict, names=("n1", "n2")) -> dict:
    return {"Pod": pod, "NodeNames": list(names)}


def test_follower_without_a_leader_url_refuses_naming_the_holder(stack):
    gate = LeaderGate(stack.extender, StubElector(False))
    out = gate.filter(filter_args(gpu_pod("p")))
    assert out.node_names == [] and "not the leader" in out.error and "held by other" in out.error
    assert "not the leader" in gate.bind({"PodName": "p", "PodNamespace": "default", "Node": "n1"})
    assert stack.cluster.pods == {}  # nothing reserved


def test_follower_forwards_to_the_leader_and_returns_its_answer(stack):
    pod = stack.api.add_pod(gpu_pod("fwd", mem=1024))
    leader = ExtenderServer(LeaderGate(stack.extender, StubElector(True)), ready=lambda: True).start()
    try:
        follower = LeaderGate(stack.extender, StubElector(False, leader_url=leader.url))
        out = follower.filter(filter_args(pod))
        assert out.error == "" and len(out.node_names) == 1
        assert follower.forwarded == 1
        assert "default/fwd" in stack.cluster.pods  # the leader reserved it
        assert follower.bind({"PodName": "fwd", "PodNamespace": "default", "Node": out.node_names[0]}) == ""
        assert stack.api.pods[("default", "fwd")]["spec"]["nodeName"] == out.node_names[0]
    finally:
        leader.stop()


def test_an_admission_refusal_is_unresolvable_over_http_through_a_follower_and_in_the_event(stack):
    """The wire answer carries the refusal in FailedAndUnresolvableNodes (kube-scheduler then neither retries it as an
    extender error nor preempts for it), a follower passes that map on, and the pod's event names it per node."""
    def refuse(req, anns):
        raise HalError("is refused by this cluster's policy")

    stack.extender.admit = refuse
    pod = stack.api.add_pod(gpu_pod("no", mem=1024))
    leader = ExtenderServer(LeaderGate(stack.extender, StubElector(True)), ready=lambda: True).start()
    try:
        req = urllib.request.Request(f"{leader.url}/filter", data=json.dumps(filter_args(pod)).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            body = json.loads(resp.read())
        why = body["FailedAndUnresolvableNodes"]["n1"]
        assert why.startswith("spec.containers[0].resources.limits") and why.endswith("is refused by this cluster's policy")
        assert body["FailedAndUnresolvableNodes"] == {"n1": why, "n2": why}
        assert body["FailedNodes"] == {} and body["Error"] == "" and body["NodeNames"] == []
        rec = StubRecorder()
        out = EventingExtender(LeaderGate(stack.extender, StubElector(False, leader_url=leader.url)), rec).filter(
            filter_args(pod))
        assert out.unresolvable == {"n1": why, "n2": why} and out.failed == {} and out.error == ""
        assert rec.events == [("default", "no", "Warning", "FilteringFailed", f"2 nodes {why}(n1, n2)")]
        assert stack.cluster.pods == {}
    finally:
        leader.stop()


def test_forward_to_a_dead_leader_is_an_error_not_a_hang(stack):
    follower = LeaderGate(stack.extender, StubElector(False, leader_url="http://127.0.0.1:9"))
    out = follower.filter(filter_args(gpu_pod("p")))
    assert "forwarding to http://127.0.0.1:9 failed" in out.error


def test_elector_timings_are_checked():
    with pytest.raises(InputError, match="renew deadline"):
        LeaseElector(None, "l", "ns", lease_s=5, renew_deadline_s=6, retry_s=1)


@pytest.mark.parametrize("bind", ["127.0.0.1:0", "0.0.0.0:00"])
def test_port_0_with_leader_election_and_no_url_is_one_line(bind):
    """The default leader URL is made from --bind before the server binds: port 0 would send followers to port 0."""
    args = argparse.Namespace(leader_elect=True, leader_elect_url="", bind=bind, leader_elect_lease_name="",
                              leader_elect_namespace="ns")
    with pytest.raises(InputError) as err:
        with_leader_election(object(), None, args)
    assert str(err.value).startswith(f"--bind: {bind!r} has port 0") and "\n" not in str(err.value)


def test_failed_message_groups_nodes_by_reason():
    msg = failed_message({"n1": "CardInsufficientMemory", "n2": "CardInsufficientMemory", "n3": "node unregistered"})
    assert msg == "2 nodes CardInsufficientMemory(n1, n2); 1 nodes node unregistered(n3)"
    many = failed_message({f"n{i}": "X" for i in range(8)})
    assert many.startswith("8 nodes X(n0, n1, n2, n3, n4, ...)")
    assert failed_message({}, "Pod: bad") == "Pod: bad"
    assert len(failed_message({f"node-{i:04d}-" + "x" * 200: f"R{i}" for i in range(50)})) <= 1024


def test_eventing_extender_records_hami_reasons(stack):
    rec = StubRecorder()
    ext = EventingExtender(stack.extender, rec)
    big = stack.api.add_pod(gpu_pod("big", mem=10**6))
    out = ext.filter(filter_args(big))
    assert out.node_names == []
    (ns, pod, kind, reason, message), = rec.events
    assert (ns, pod, kind, reason) == ("default", "big", "Warning", "FilteringFailed")
    assert message.startswith("2 nodes ") and "CardInsufficientMemory" in message
    okp = stack.api.add_pod(gpu_pod("ok", mem=1024))
    out = ext.filter(filter_args(okp))
    assert rec.events[-1][3] == "FilteringSucceed" and out.node_names[0] in rec.events[-1][4]
    assert ext.bind({"PodName": "ok", "PodNamespace": "default", "Node": out.node_names[0]}) == ""
    assert rec.events[-1][2:4] == ("Normal", "BindingSucceed")
    plain = stack.api.add_pod({"metadata": {"name": "plain", "namespace": "default"},
                               "spec": {"containers": [{"name": "c", "image": "x"}]}})
    assert ext.filter(filter_args(plain)).error == ""
    assert len(rec.events) == 3  # a pod without devices is not the extender's business
