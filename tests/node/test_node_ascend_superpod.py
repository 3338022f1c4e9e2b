"""An Ascend 910C (superPod) request for 1 NPU runs, as in HAMi: end to end on the simulated 16-die node.

HAMi's webhook raises a 910C whole-card count of 1 to 2 (dies come in module pairs) in the container's limit, so
the kubelet asks the device plugin for the two dies the scheduler assigns. Here: the webhook (with the installed
plugin's admission) -> the scheduler's Filter/Bind -> the kubelet's Allocate through the node agent. The counter
case pins what happens without it: a pod that skipped it keeps its limit of 1, and the scheduler refuses every node
with one line (an assignment of a pair would be refused at Allocate), so nothing is assigned or bound.
"""

from __future__ import annotations

import base64
import json

import pytest
from json_patch import apply_patch
from node_agent_fixtures import NODE, make_agent

from hami_hal.manager import Hal

pytest.importorskip("hami_plugins_ascend.plugin", exc_type=ImportError)

C = "huawei.com/Ascend910C"
TO_ALLOCATE = "hami.io/Ascend910C-devices-to-allocate"


def _pod(name: str, count: str, requests: bool = True) -> dict:
    res = {"limits": {C: count}, **({"requests": {C: count}} if requests else {})}  # the apiserver's defaulting
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "annotations": {}},
            "spec": {"containers": [{"name": "main", "image": "npu", "resources": res}]}}


@pytest.fixture
def stack(api, kubelet, short_tmp):
    """The node agent on ``ascend-16x910c``, the extender and the webhook as the chart runs them (the installed
    Ascend plugin's admission in both)."""
    from hami_scheduler.capability import CapabilityGate
    from hami_scheduler.extender import Extender
    from hami_scheduler.kube import Kube, api_client, sync
    from hami_scheduler.state import ClusterState
    from hami_scheduler.webhook import Mutator

    agent = make_agent(Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"]), api, short_tmp,
                       sim_node="ascend-16x910c")
    agent.start()
    sched = Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"])
    cluster = ClusterState(sched.vendors())
    sync(Kube(api_client(api.url)), cluster)
    ext = Extender(cluster, Kube(api_client(api.url)), CapabilityGate(None), admit=sched.admit_request,
                   pod_annotator=sched.pod_annotations)
    webhook = Mutator(sched.vendors(), admit=sched.admit_request)
    assert kubelet.wait(lambda k: C in k.endpoints and len(k.healthy(C)) >= 2)
    yield agent, ext, webhook
    agent.stop()


def _admitted(webhook, pod: dict) -> dict:
    """The pod as the apiserver stores it after the webhook's patch."""
    resp = webhook.review({"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE", "namespace": "default",
                           "object": pod})
    assert resp["allowed"], resp
    ops = json.loads(base64.b64decode(resp["patch"])) if "patch" in resp else []
    return apply_patch(pod, ops)


def _placed(api, ext, pod: dict) -> list[str]:
    """Filter + Bind; the dies the scheduler assigned the container."""
    api.add_pod(pod)
    name = pod["metadata"]["name"]
    stored = api.pods[("default", name)]
    assert ext.filter({"Pod": stored, "NodeNames": [NODE]}).node_names == [NODE]
    assert ext.bind({"PodName": name, "PodNamespace": "default", "PodUID": stored["metadata"]["uid"],
                     "Node": NODE}) == ""
    seg = api.pods[("default", name)]["metadata"]["annotations"][TO_ALLOCATE].split(";")[0]
    return [e.split(",")[0] for e in seg.split(":") if e]


def _kubelet_ids(pod: dict) -> int:
    """What the kubelet asks the device plugin for: the container's limit."""
    return int(pod["spec"]["containers"][0]["resources"]["limits"][C])


@pytest.mark.parametrize("requests", [True, False], ids=["limit+request", "limit-only"])
def test_a_910c_request_for_one_npu_gets_its_module_pair_end_to_end(stack, api, kubelet, requests):
    agent, ext, webhook = stack
    pod = _admitted(webhook, _pod("one", "1", requests))
    res = pod["spec"]["containers"][0]["resources"]
    # HAMi's MutateAdmission: the limit (and the request, where given) becomes 2; nothing else changes
    assert res == {"limits": {C: "2"}, **({"requests": {C: "2"}} if requests else {})}
    assert pod["spec"]["schedulerName"] == "hami-scheduler"
    dies = _placed(api, ext, pod)
    by_uuid = {d.uuid: d for d in agent.inventory.devices}
    assert len(dies) == 2
    assert len({by_uuid[u].attributes["die_pair"] for u in dies}) == 1  # the two dies of one card
    ids = kubelet.preferred(C, kubelet.healthy(C), [], _kubelet_ids(pod))
    (ctr,) = kubelet.allocate(C, [ids]).container_responses
    phys = sorted(str(by_uuid[u].attributes["phy_id"]) for u in dies)
    assert sorted(dict(ctr.envs)["ASCEND_VISIBLE_DEVICES"].split(",")) == phys
    assert api.pods[("default", "one")]["metadata"]["annotations"]["hami.io/bind-phase"] == "success"


def test_a_910c_pod_that_skipped_the_webhook_is_refused_at_filter_with_one_line(stack, api):
    agent, ext, _ = stack
    pod = _pod("skipped", "1")  # e.g. labelled hami.io/webhook=ignore: its limit stays 1
    api.add_pod(pod)
    stored = api.pods[("default", "skipped")]
    out = ext.filter({"Pod": stored, "NodeNames": [NODE]})
    # the kubelet would ask for 1 and an assignment of 2 be refused at Allocate: no node takes it, one reason
    assert out.node_names == [] and out.error == "" and out.allocation is None and out.failed == {}
    (why,) = out.unresolvable.values()  # the pod alone decides: no node, and no preemption, can help
    assert why == f"container main: {C}: 1 skipped admission, which raises it to 2 (whole devices go in multiples of 2)"
    assert TO_ALLOCATE not in api.pods[("default", "skipped")]["metadata"].get("annotations", {})
    refused = ext.bind({"PodName": "skipped", "PodNamespace": "default", "PodUID": stored["metadata"]["uid"],
                        "Node": NODE})
    assert refused == f"bind default/skipped to {NODE}: {why}"
    assert not api.pods[("default", "skipped")]["spec"].get("nodeName")
    assert not list(agent.state.root.glob("*skipped*"))
