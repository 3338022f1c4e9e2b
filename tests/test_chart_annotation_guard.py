"""The chart's guarded pod-annotation and pod-label lists (values.yaml scheduler.annotationGuard.keys, .labels) are
the code's lists, so the admission policy and the keys the scheduler and node agent write cannot drift apart; the
pod author's request annotations are never in them, and are in .requestKeys (held once the pod is placed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from hami_hal.hami_compat import keys
from hami_hal.manager import Hal

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "charts" / "hami-hal" / "values.yaml"


def _generator():
    spec = importlib.util.spec_from_file_location("annotation_guard_keys", REPO / "hack" / "annotation_guard_keys.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def chart_keys(name: str = "keys") -> list[str]:
    return yaml.safe_load(VALUES.read_text())["scheduler"]["annotationGuard"][name]


def test_chart_guards_exactly_the_keys_the_code_writes():
    gen = _generator()
    want = gen.expected()
    assert {"keys": chart_keys(), "labels": chart_keys("labels"), "requestKeys": chart_keys("requestKeys")} == want, \
        "run `.venv/bin/python hack/annotation_guard_keys.py --write`"
    assert gen.chart_lists(VALUES.read_text()) == want  # the markers hold the same lists the YAML parser reads
    assert gen.chart_keys(VALUES.read_text()) == want["keys"]


def test_the_node_label_the_scheduler_writes_is_guarded():
    """HAMi labels a filtered pod hami.io/vgpu-node=<node> (its monitor, and this scheduler's bind replay, list a
    node's pods by it): the label is the scheduler's alone, like the annotation of the same name."""
    assert keys.VGPU_NODE in chart_keys() and chart_keys("labels") == [keys.VGPU_NODE]
    assert keys.guarded_pod_labels() == sorted(keys.SCHEDULER_POD_LABELS)


def test_the_block_round_trips_and_a_missing_list_reads_empty():
    gen = _generator()
    lists = {"keys": ["a/x", "b/y"], "labels": ["c/z"], "requestKeys": ["d/w"]}
    text = f"scheduler:\n  annotationGuard:\n{gen.block(lists)}\n"
    assert gen.chart_lists(text) == lists and yaml.safe_load(text)["scheduler"]["annotationGuard"] == lists
    assert gen.chart_lists(text.replace("    labels:\n      - c/z\n", "")) == {"keys": ["a/x", "b/y"], "labels": [],
                                                                            "requestKeys": ["d/w"]}
    assert gen.chart_lists("no markers") == {"keys": [], "labels": [], "requestKeys": []}


def test_guarded_keys_cover_every_family_and_the_bind_keys():
    vendors = Hal().vendors()
    guarded = set(chart_keys())
    for vendor in vendors:
        for fam in vendor.resources:
            fk = keys.family_keys(vendor, fam)
            assert {fk.to_allocate, fk.allocated} - {None} <= guarded, (vendor.name, fam.common_word)
    assert set(keys.SCHEDULER_POD_KEYS) <= guarded
    assert {"hami.io/vgpu-devices-to-allocate", "hami.io/bind-phase"} <= guarded


def test_the_pod_authors_request_annotations_stay_writable():
    vendors = Hal().vendors()
    authors = {keys.GPU_POLICY, keys.SCORING_WEIGHTS, keys.NODE_POLICY}
    for vendor in vendors:
        for sel in [vendor.selectors, *(f.selectors for f in vendor.resources)]:
            if sel is not None:
                authors |= {sel.use_type, sel.nouse_type, sel.use_uuid, sel.nouse_uuid, sel.mode, sel.numa_bind}
    authors.discard(None)
    assert {"nvidia.com/use-gputype", "nvidia.com/use-gpuuuid"} <= authors
    assert authors.isdisjoint(chart_keys())
    # ... and every one of them is held once the pod is placed, with the vendors' pod rules (vnpu-mode, QoS)
    held = set(chart_keys("requestKeys"))
    assert authors <= held and {"huawei.com/vnpu-mode", "metax-tech.com/sgpu-qos-policy"} <= held
    assert held.isdisjoint(chart_keys())
    # and no node-side key (registration, handshake, lock, cordon) is mistaken for a pod one
    node_keys = {keys.NODE_LOCK, keys.DEVICE_CORDON, keys.HAL_INVENTORY}
    for vendor in vendors:
        for fam in vendor.resources:
            fk = keys.family_keys(vendor, fam)
            node_keys |= {fk.node_register, fk.node_handshake}
    assert node_keys.isdisjoint(chart_keys())


def test_guarded_pod_keys_is_sorted_and_unique():
    vendors = Hal().vendors()
    out = keys.guarded_pod_keys(vendors, ["x/extra", "hami.io/bind-phase"])
    assert out == sorted(set(out)) and "x/extra" in out and out.count("hami.io/bind-phase") == 1
