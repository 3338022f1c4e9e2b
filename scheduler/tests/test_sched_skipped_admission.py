"""A pod whose count the vendor's admission would raise, but which skipped the webhook, is refused at Filter.

An Ascend 910C (superPod) whole-card count of 1 is raised to a die pair of 2 by the admission webhook, which writes
the 2 into the container's limit; the kubelet asks the device plugin for the limit. A pod that skipped the webhook
(the opt-out label, or the webhook down under ``failurePolicy: Ignore``) still says 1: an assignment of 2 would be
refused at Allocate, so the extender refuses every node with one line and reserves nothing. A count the webhook
already wrote (2), a vNPU of one die (``-memory``) and an odd count the admission refuses (3) are checked too.
"""

from __future__ import annotations

import logging

import pytest
from hami_scheduler.extender import MAX_REFUSAL_REASON, Extender
from hami_scheduler.state import ClusterState

from hami_hal.errors import HalError
from hami_hal.hami_compat import HAL_INVENTORY
from hami_hal.manager import Hal
from hami_hal.testing.helpers import sim_inventory

pytest.importorskip("hami_plugins_ascend.plugin", exc_type=ImportError)

C = "huawei.com/Ascend910C"
NODES = ["npu-a", "npu-b"]
SKIPPED = f"container main: {C}: 1 skipped admission, which raises it to 2 (whole devices go in multiples of 2)"
LOGGED = (f"container main: {C}: 1 whole device(s), but Ascend910C whole devices go in multiples of 2: the admission "
          "webhook raises the count to 2 and writes it into the pod; this pod skipped admission (the opt-out label "
          "hami.io/webhook=ignore, or the webhook was unavailable): recreate it through the webhook, or ask for 2")
ODD = f"{C}: 3 must be 1 or even on a superPod chip (whole cards come in die pairs)"


@pytest.fixture(scope="module")
def hal() -> Hal:
    return Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"])


def _extender(hal: Hal, admit, names: list[str] = NODES) -> Extender:
    """The extender over simulated 16-die 910C nodes, with ``admit`` as the vendors' admission."""
    cluster = ClusterState(hal.vendors())
    for name in names:
        inv = sim_inventory(hal, "ascend-16x910c", name)
        cluster.upsert_node({"metadata": {"name": name, "annotations": {
            HAL_INVENTORY: inv.model_dump_json(by_alias=True)}}})
    return Extender(cluster, None, admit=admit, pod_annotator=hal.pod_annotations)


@pytest.fixture
def ext(hal) -> Extender:
    return _extender(hal, hal.admit_request)


def _pod(name: str, limits: dict, annotations: dict | None = None) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"u-{name}", "annotations": annotations or {}},
            "spec": {"containers": [{"name": "main", "resources": {"limits": limits}}]}}


def _reserved(ext: Extender) -> int:
    return len(ext.cluster.pods)


def test_a_910c_count_of_one_that_skipped_the_webhook_is_unresolvable_on_every_node_with_one_short_line(ext):
    """The pod alone decides, so preempting pods cannot help: every node goes in FailedAndUnresolvableNodes, none
    in FailedNodes, no Error (kube-scheduler would retry an error with backoff)."""
    out = ext.filter({"Pod": _pod("skipped", {C: "1"}), "NodeNames": NODES})
    assert out.node_names == [] and out.error == "" and out.allocation is None
    assert out.unresolvable == {n: SKIPPED for n in NODES} and out.failed == {}
    assert "\n" not in SKIPPED and len(SKIPPED) <= MAX_REFUSAL_REASON
    assert _reserved(ext) == 0  # nothing assigned, nothing to bind


def test_the_refusal_names_an_unknown_node_too(ext):
    out = ext.filter({"Pod": _pod("skipped", {C: "1"}), "NodeNames": ["npu-a", "gone"]})
    assert out.unresolvable == {"npu-a": SKIPPED, "gone": SKIPPED}


@pytest.mark.parametrize(("count", "short", "full"), [("1", SKIPPED, LOGGED), ("3", ODD, ODD)])
def test_the_full_text_is_logged_once_per_pod_not_per_node_or_retry(ext, caplog, count, short, full):
    caplog.set_level(logging.WARNING, logger="hami_scheduler.extender")
    for _ in range(5):  # kube-scheduler asks again after each backoff
        out = ext.filter({"Pod": _pod("p", {C: count}), "NodeNames": NODES})
        assert out.unresolvable == {n: short for n in NODES}
    ext.filter({"Pod": _pod("q", {C: count}), "NodeNames": NODES})
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"filter default/{p}: refused on every node (preemption cannot help): {full}" for p in "pq"]


def test_a_count_the_webhook_wrote_is_placed_as_a_die_pair(ext):
    out = ext.filter({"Pod": _pod("admitted", {C: "2"}), "NodeNames": NODES})
    assert out.node_names and out.error == ""
    (ctr,) = out.allocation.containers
    by_uuid = {d.uuid: d for d in ext.cluster.nodes[out.node_names[0]].inventory.devices}
    assert len({by_uuid[s.uuid].attributes["die_pair"] for s in ctr.slices}) == 1 and len(ctr.slices) == 2


def test_an_odd_count_is_unresolvable_with_the_admissions_line_not_an_error_and_nothing_is_reserved(ext):
    out = ext.filter({"Pod": _pod("odd", {C: "3"}), "NodeNames": NODES})
    assert out.node_names == [] and out.allocation is None and out.error == "" and out.failed == {}
    assert out.unresolvable == {n: ODD for n in NODES}
    assert _reserved(ext) == 0


def test_any_admission_refusal_is_unresolvable_in_one_bounded_line(hal, caplog):
    """Not only the Ascend rule: whatever a plugin's admission refuses, in however many words, is cut to one line of
    at most MAX_REFUSAL_REASON characters per node; the log has the first line in full."""
    def refuse(req, anns):
        raise HalError("x" * 400 + "\nsecond line")

    ext = _extender(hal, refuse, ["npu-a"])
    out = ext.filter({"Pod": _pod("p", {C: "2"}), "NodeNames": ["npu-a"]})
    (why,) = out.unresolvable.values()
    assert out.error == "" and why.startswith(f'spec.containers[0].resources.limits["{C}"]: 2 xxx')
    assert why.endswith("...") and len(why) == MAX_REFUSAL_REASON and "second" not in why
    assert "x" * 400 in caplog.text and "second" not in caplog.text


def test_a_malformed_pod_is_unresolvable_too_from_the_same_place(ext, caplog):
    """The parser's refusal also depends on the pod alone (test_sched_pod_refused.py has the other cases)."""
    caplog.set_level(logging.WARNING, logger="hami_scheduler.extender")
    for _ in range(3):
        out = ext.filter({"Pod": _pod("bad", {C: "many"}), "NodeNames": NODES})
        assert out.error == "" and out.failed == {} and out.allocation is None
        assert out.unresolvable == {n: f"spec.containers[0].resources.limits[\"{C}\"]: 'many' is not a valid Kubernetes "
                                       "quantity" for n in NODES}
    assert len(caplog.records) == 1 and _reserved(ext) == 0


def test_a_one_die_vnpu_keeps_its_count_and_is_placed(ext):
    out = ext.filter({"Pod": _pod("vnpu", {C: "1", f"{C}-memory": "16384"}), "NodeNames": NODES})
    assert out.node_names and len(out.allocation.slices()) == 1


def test_a_memory_request_a_node_rounds_to_a_whole_card_is_still_refused_per_node(ext):
    """``-memory`` above every template: the node rounds it to a whole card, which goes in pairs; admission does
    not raise it (the node decides), so each node says why, as before."""
    out = ext.filter({"Pod": _pod("big", {C: "1", f"{C}-memory": "65536"}), "NodeNames": NODES})
    assert out.node_names == [] and out.error == "" and out.unresolvable == {}
    assert set(out.failed) == set(NODES)
    assert all("16/16 TemplateNotFit" in why and why != SKIPPED for why in out.failed.values())


def test_a_soft_share_of_one_die_keeps_its_count(ext):
    """In hami-core mode a count of 1 stays 1 (a share of one die): no raise, so no refusal for skipping."""
    out = ext.filter({"Pod": _pod("soft", {C: "1"}, {"huawei.com/vnpu-mode": "hami-core"}), "NodeNames": NODES})
    assert all(why != SKIPPED for why in out.failed.values())


def test_without_plugin_admission_each_node_refuses_a_count_of_one(hal):
    """``--vendors``: no admission raises the count, so a count of 1 reaches each node, whose partition model (the
    Ascend plugin's ``whole_count_multiple``) refuses one whole die; a count of 2 is placed."""
    ext = _extender(hal, None, ["npu-a"])
    out = ext.filter({"Pod": _pod("one", {C: "1"}), "NodeNames": ["npu-a"]})
    assert out.node_names == [] and "16/16 TemplateNotFit" in out.failed["npu-a"]
    assert len(ext.filter({"Pod": _pod("two", {C: "2"}), "NodeNames": ["npu-a"]}).allocation.slices()) == 2


@pytest.mark.parametrize(("limits", "to", "brief", "said"), [
    ({C: "2"}, 1, "changes it to 1",
     f"{C}: 2 device(s), but the admission webhook changes the count to 1 and writes it into the pod"),
    ({C: "1", f"{C}-memory": "16384"}, 2, "raises it to 2",  # a one-die vNPU: the family's whole-device rule
     f"{C}: 1 device(s), but the admission webhook raises the count to 2 and writes it into the pod"),
])
def test_any_count_an_admission_changes_at_filter_is_refused_in_the_cores_words(hal, caplog, limits, to, brief, said):
    """The rule is the core's, for any vendor's admission; only a change the family's data explains names it."""
    ext = _extender(hal, lambda req, anns: req.model_copy(update={"count": to}), ["npu-a"])
    out = ext.filter({"Pod": _pod("p", limits), "NodeNames": ["npu-a"]})
    assert out.unresolvable["npu-a"] == f"container main: {C}: {limits[C]} skipped admission, which {brief}"
    assert out.allocation is None and not ext.cluster.pods
    assert f"container main: {said}; this pod skipped admission" in caplog.text
