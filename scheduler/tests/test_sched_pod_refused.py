"""A pod the parser refuses depends on the pod alone: Filter answers it like an admission refusal, and Bind refuses it.

kube-scheduler retries an extender ``Error`` with backoff for as long as the pod exists; a malformed pod (a count out of
range, a bad annotation, a combination the request model refuses) is never going to parse, so on main (90b9972) it was
asked about again every backoff. Now every candidate node gets one line of at most ``MAX_REFUSAL_REASON`` characters
naming the field and the value in ``FailedAndUnresolvableNodes``, ``Error`` stays empty, nothing is reserved or
written, and the full text is logged once. ``Error`` stays for what is not the pod's doing (a request that names no
pod of the API, the API failing): those tests are here too.

Bind re-checks with the same rule (``Extender.parse``) on the pod it is about to bind: an allocation annotation written
by a stale scheduler or by whoever may edit the pod never binds a pod Filter refuses. On main a pod whose annotations
became malformed after its Filter, or that carried a forged allocation, was bound.
"""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest
from hami_scheduler.extender import MAX_REFUSAL_REASON
from kubernetes.client.rest import ApiException
from sched_fakeapi import FakeApiServer
from sched_testing import gpu_node, gpu_pod, start_stack

POLICY = "hami.io/gpu-scheduler-policy"
ALLOC = "hami.io/vgpu-devices-allocated"
LOCK = "hami.io/mutex.lock"
NODES = ["node1", "node2"]


@pytest.fixture
def stack():
    api = FakeApiServer().start()
    for n in NODES:
        api.add_node(gpu_node(n, gpus=2))
    s = start_stack(api, watch=False)
    yield s
    s.stop()


def post(stack, verb: str, body: dict) -> dict:
    req = urllib.request.Request(f"{stack.server.url}/{verb}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _limits(pod: dict) -> dict:
    return pod["spec"]["containers"][0]["resources"]["limits"]


def _cores(v):
    return lambda p: _limits(p).update({"nvidia.com/gpucores": v})


def _annotate(key, v):
    return lambda p: p["metadata"]["annotations"].update({key: v})


def _zero_count_with_a_share(p):
    _limits(p).update({"nvidia.com/gpu": 0})


# (what is wrong, how the pod gets it, the field the reason names, the value it names, the reason's words)
MALFORMED = [
    ("cores over 100", _cores(150), 'limits["nvidia.com/gpucores"]', "150", "must be between 0 and 100"),
    ("memory percentage over 100", lambda p: _limits(p).update({"nvidia.com/gpumem-percentage": 150}),
     'limits["nvidia.com/gpumem-percentage"]', "150", "must be between 0 and 100"),
    ("unparsable count", lambda p: _limits(p).update({"nvidia.com/gpu": "many"}), 'limits["nvidia.com/gpu"]',
     "'many'", "is not a valid Kubernetes quantity"),
    ("unknown device policy", _annotate(POLICY, "fastest"), POLICY, "'fastest'", "names unknown policy"),
    ("binpack and spread", _annotate(POLICY, "binpack,spread"), POLICY, "'binpack,spread'", "both binpack and spread"),
    ("count 0 with a share", _zero_count_with_a_share, 'limits["nvidia.com/gpu"]', "0", "asks for a share"),
    ("type both used and refused", lambda p: p["metadata"]["annotations"].update(
        {"nvidia.com/use-gputype": "A100", "nvidia.com/nouse-gputype": "A100"}), "nvidia.com/nouse-gputype", "'A100'",
     "excludes type"),
]


@pytest.mark.parametrize(("what", "spoil", "field", "value", "why"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_pod_is_unresolvable_on_every_node_with_one_line_naming_the_field_and_value(
        stack, caplog, what, spoil, field, value, why):
    caplog.set_level(logging.WARNING, logger="hami_scheduler.extender")
    pod = gpu_pod("bad")
    spoil(pod)
    pod = stack.api.add_pod(pod)
    for _ in range(3):  # kube-scheduler asks again; every answer is the same, and none is an Error
        body = post(stack, "filter", {"Pod": pod, "NodeNames": NODES})
        assert body["Error"] == "" and body["NodeNames"] == [] and body["FailedNodes"] == {}
        reasons = body["FailedAndUnresolvableNodes"]
        assert set(reasons) == set(NODES) and len(set(reasons.values())) == 1
        (line,) = set(reasons.values())
        assert field in line and f": {value} " in line, line
        assert why in line and "\n" not in line and len(line) <= MAX_REFUSAL_REASON, line
    assert stack.cluster.pods == {}  # nothing reserved
    assert stack.api.pods[("default", "bad")]["metadata"]["annotations"] == pod["metadata"]["annotations"]
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and logged[0].startswith("filter default/bad: refused on every node"), logged
    # the FilteringFailed counter of kube-scheduler's view: these were fit answers, not extender errors
    assert stack.server.metrics.requests.labels("filter", "error")._value.get() == 0
    assert stack.server.metrics.requests.labels("filter", "unfit")._value.get() == 3


def test_a_dry_run_filter_refuses_every_listed_node_the_same_way(stack):
    pod = gpu_pod("bad")
    _cores(150)(pod)
    pod = stack.api.add_pod(pod)
    nodes = {"items": [stack.api.nodes[n] for n in NODES]}
    body = post(stack, "filter", {"Pod": pod, "Nodes": nodes})
    assert body["Error"] == "" and set(body["FailedAndUnresolvableNodes"]) == set(NODES)


def test_a_huge_value_is_cut_so_the_field_and_the_reason_still_fit_and_the_log_is_bounded(stack, caplog):
    """A 64 KiB annotation value: the line keeps the field, the start of the value and the reason's words."""
    caplog.set_level(logging.WARNING, logger="hami_scheduler.extender")
    pod = stack.api.add_pod(gpu_pod("huge", annotations={POLICY: "x" * 65536}))
    out = stack.extender.filter({"Pod": pod, "NodeNames": NODES})
    (line,) = set(out.unresolvable.values())
    assert out.error == "" and len(line) <= MAX_REFUSAL_REASON, line
    assert line.startswith(f'metadata.annotations["{POLICY}"]: \'xxxx') and "... names unknown policy 'xx" in line, line
    (record,) = caplog.records
    assert len(record.getMessage()) < 1100  # the full text, cut at MAX_LOGGED_REFUSAL


def test_what_is_not_the_pods_doing_stays_an_error(stack, monkeypatch):
    """A request naming no pod of the API (another UID, a deleted pod), or the API failing, is an Error: kube-scheduler
    should ask again (the pod may be recreated, the API may come back); no node is called unresolvable."""
    good = stack.api.add_pod(gpu_pod("good"))
    forged = json.loads(json.dumps(good))
    forged["metadata"]["uid"] = "other-uid"
    gone = gpu_pod("gone")
    gone["metadata"]["uid"] = "uid-gone"
    for body_pod, words in ((forged, "does not match"), (gone, "does not exist on the API server")):
        body = post(stack, "filter", {"Pod": body_pod, "NodeNames": NODES})
        assert words in body["Error"] and body["FailedAndUnresolvableNodes"] == {}, body

    def down(ns, name):
        raise ApiException(status=503, reason="Service Unavailable")

    monkeypatch.setattr(stack.kube, "get_pod", down)
    body = post(stack, "filter", {"Pod": good, "NodeNames": NODES})
    assert "503" in body["Error"] and body["FailedAndUnresolvableNodes"] == {}, body
    assert post(stack, "filter", {"Pod": good, "NodeNames": "node1"})["Error"].startswith("NodeNames")


# -- Bind re-checks ---------------------------------------------------------------------------------------------------

def _bind(stack, name: str) -> str:
    return stack.extender.bind({"PodName": name, "PodNamespace": "default", "PodUID": f"uid-{name}", "Node": "node1"})


def _nothing_left(stack, name: str) -> None:
    """No binding, no reservation in the cache, no allocation annotation, no node lock."""
    pod = stack.api.pods[("default", name)]
    assert not pod["spec"].get("nodeName") and not stack.api.bindings
    assert f"default/{name}" not in stack.cluster.pods
    assert ALLOC not in pod["metadata"]["annotations"] and "hami.io/vgpu-node" not in pod["metadata"]["annotations"]
    assert LOCK not in stack.api.nodes["node1"]["metadata"]["annotations"]


def _edit(stack, name: str, annotations: dict) -> None:
    """Whoever may update the pod changes its annotations on the API."""
    with stack.api.cond:
        stack.api.pods[("default", name)]["metadata"]["annotations"].update(annotations)


def test_a_pod_refused_at_filter_is_refused_by_a_direct_bind_in_one_line_with_nothing_held(stack):
    pod = gpu_pod("bad")
    _cores(150)(pod)
    pod = stack.api.add_pod(pod)
    refused = stack.extender.filter({"Pod": pod, "NodeNames": NODES})
    assert set(refused.unresolvable) == set(NODES)
    err = _bind(stack, "bad")
    assert err == f"bind default/bad to node1: {refused.unresolvable['node1']}", err
    _nothing_left(stack, "bad")


def test_a_forged_allocation_does_not_bind_a_pod_filter_refuses(stack, monkeypatch):
    """The refused pod copies a good pod's allocation annotations (it may edit its own annotations), then Bind is
    called directly (an attacker, or a stale scheduler): the re-check refuses it, before any node lock, and clears
    what it wrote."""
    good = stack.api.add_pod(gpu_pod("good"))
    assert stack.extender.filter({"Pod": good, "NodeNames": ["node1"]}).node_names == ["node1"]
    written = {k: v for k, v in stack.api.pods[("default", "good")]["metadata"]["annotations"].items()
               if k.startswith(("hami.io/", "nvidia.com/"))}
    stack.cluster.remove_pod("default/good")
    bad = gpu_pod("bad")
    _cores(150)(bad)
    stack.api.add_pod(bad)
    _edit(stack, "bad", written)
    locks = []
    real = stack.kube.lock_node
    monkeypatch.setattr(stack.kube, "lock_node", lambda *a, **k: locks.append(a) or real(*a, **k))
    err = _bind(stack, "bad")
    assert locks == []  # refused before the node lock: another scheduler's bind to node1 never waits for it
    assert err.startswith("bind default/bad to node1: ") and "gpucores" in err and "150" in err, err
    assert "\n" not in err and len(err) <= MAX_REFUSAL_REASON + 40
    _nothing_left(stack, "bad")


def test_a_pod_spoiled_after_its_filter_is_not_bound_and_its_reservation_goes(stack):
    """A stale Filter answer: the pod was placed, then its annotations changed to a value Filter refuses."""
    pod = stack.api.add_pod(gpu_pod("late"))
    assert stack.extender.filter({"Pod": pod, "NodeNames": ["node1"]}).node_names == ["node1"]
    assert "default/late" in stack.cluster.pods
    _edit(stack, "late", {POLICY: "fastest"})
    err = _bind(stack, "late")
    assert err.startswith("bind default/late to node1: ") and "'fastest' names unknown policy" in err, err
    _nothing_left(stack, "late")
    _edit(stack, "late", {POLICY: "binpack"})  # fixed: filtered and bound as any pod
    assert stack.extender.filter({"Pod": stack.api.pods[("default", "late")], "NodeNames": ["node1"]}).node_names
    assert _bind(stack, "late") == "" and stack.api.bindings == [("default", "late", "node1")]


def test_the_bind_under_the_lock_checks_the_pod_it_reads_there(stack, monkeypatch):
    """The pod may change between Bind's first read and its read under the node lock: the second read is checked
    too (the check before the lock only spares the lock)."""
    pod = stack.api.add_pod(gpu_pod("race"))
    assert stack.extender.filter({"Pod": pod, "NodeNames": ["node1"]}).node_names == ["node1"]
    real = stack.kube.lock_node

    def lock_then_spoil(*a, **k):
        out = real(*a, **k)
        _edit(stack, "race", {POLICY: "fastest"})
        return out

    monkeypatch.setattr(stack.kube, "lock_node", lock_then_spoil)
    err = _bind(stack, "race")
    assert "'fastest' names unknown policy" in err, err
    _nothing_left(stack, "race")


def test_prioritize_of_a_refused_pod_scores_every_node_0_and_changes_nothing(stack):
    """kube-scheduler does not prioritize a pod with no feasible node, but a direct call must not place it either."""
    pod = gpu_pod("bad")
    _cores(150)(pod)
    pod = stack.api.add_pod(pod)
    assert post(stack, "prioritize", {"Pod": pod, "NodeNames": NODES}) == [{"Host": n, "Score": 0} for n in NODES]
    assert stack.cluster.pods == {} and not stack.api.bindings
