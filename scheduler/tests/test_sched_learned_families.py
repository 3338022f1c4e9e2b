"""Families a node's agent adds (a chip only its settings describe) are learned from its inventory annotation, so a
pod can ask for them and is rounded with the node's own templates; a forged inventory cannot take over another
family's names or protocol keys, replace a family, or add without bound (recorded as rejected, one line)."""

from __future__ import annotations

import json

import pytest
from hami_scheduler.extender import Extender, PodRefused
from hami_scheduler.state import ClusterState
from sched_testing import NVIDIA, gpu_node

from hami_hal.hami_compat import HAL_INVENTORY
from hami_hal.models import (
    AnnotationKeys,
    Device,
    NodeInventory,
    PartitionKind,
    PartitionModel,
    PartitionTemplate,
    Provenance,
    ResourceFamily,
    VendorInfo,
)
from hami_hal.vendor_families import MAX_ADDED_FAMILIES


def _family(word: str, domain: str = "zeta.io", **keys) -> ResourceFamily:
    low = word.lower()
    ann = {"node_register": f"zeta.io/node-register-{word}", "to_allocate": f"zeta.io/{word}-devices-to-allocate",
           "allocated": f"zeta.io/{word}-devices-allocated"} | keys
    return ResourceFamily(common_word=word, count=f"{domain}/{low}", memory=f"{domain}/{low}-memory",
                          default_memory_mib=0, annotations=AnnotationKeys(**ann))


ZETA = VendorInfo(name="zeta", display_name="Zeta", resources=[_family("Z1")], domains=["zeta.io/"])
TEMPLATES = PartitionModel(kind=PartitionKind.TEMPLATES, memory_mib=32768, max_slots=4, templates=[
    PartitionTemplate(name="t6", memory_mib=6144, compute_percent=25),
    PartitionTemplate(name="t12", memory_mib=12288, compute_percent=50),
    PartitionTemplate(name="whole", memory_mib=32768, compute_percent=100)])


def _node(name: str, *families: ResourceFamily, vendor: str = "zeta") -> dict:
    fams = list(families) or [_family("Z2")]
    devs = [Device(vendor=vendor, index=i, uuid=f"{name}-Z-{i}", model="z", hami_type=f.common_word,
                   family=f.common_word, memory_mib=32768, partition=TEMPLATES, provenance=Provenance(source="real"))
            for i, f in enumerate(fams)]
    base = ZETA if vendor == "zeta" else VendorInfo(name=vendor, display_name=vendor, resources=[])
    inv = NodeInventory(node=name, source="simulated", devices=devs,
                        vendors=[base.model_copy(update={"resources": [*base.resources, *fams]})])
    return {"metadata": {"name": name, "annotations": {HAL_INVENTORY: inv.model_dump_json(by_alias=True)}}}


def _pod(limits: dict) -> dict:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "annotations": {}},
            "spec": {"containers": [{"name": "main", "resources": {"limits": limits}}]}}


def _words(cluster: ClusterState) -> list[str]:
    return [f.common_word for v in cluster.vendors if v.name == "zeta" for f in v.resources]


def test_a_family_a_node_adds_is_learned_and_rounded_with_the_nodes_templates():
    cluster = ClusterState([NVIDIA, ZETA])
    ext = Extender(cluster)
    cluster.upsert_node(_node("n1"))
    assert _words(cluster) == ["Z1", "Z2"]
    out = ext.filter({"Pod": _pod({"zeta.io/z2": "1", "zeta.io/z2-memory": "7000"}), "NodeNames": ["n1"]})
    assert out.node_names == ["n1"]
    (s,) = out.allocation.slices()
    assert (s.common_word, s.template, s.memory_mib) == ("Z2", "t12", 12288)
    anns = ext.filter_annotations(_pod({}), out.allocation)
    assert anns["zeta.io/Z2-devices-allocated"].startswith("n1-Z-0,Z2,12288,")
    cluster.upsert_node(_node("n2"))  # the same family from another node: learned once
    assert _words(cluster) == ["Z1", "Z2"] and not cluster.rejected


def test_before_any_node_adds_it_the_resource_is_unknown():
    ext = Extender(ClusterState([NVIDIA, ZETA]))
    with pytest.raises(PodRefused, match="zeta.io/z2"):
        ext.parse(_pod({"zeta.io/z2": "1"}))


def test_a_forged_inventory_cannot_take_over_names_or_keys():
    cluster = ClusterState([NVIDIA, ZETA])
    cluster.upsert_node(gpu_node("g1"))
    bad = {
        "n-key": _family("Z3", to_allocate="hami.io/vgpu-devices-to-allocate"),  # NVIDIA's allocations
        "n-domain": _family("Z4", domain="nvidia.com"),  # another vendor's domain
        "n-name": _family("Z5").model_copy(update={"count": "zeta.io/z1"}),  # Z1's resource
        "n-word": _family("Z 6"),
    }
    for node, fam in bad.items():
        cluster.upsert_node(_node(node, fam))
        assert _words(cluster) == ["Z1"], node
        text = cluster.rejected[f"node:{node}/families"]
        assert text.startswith("families not learned: zeta.resources[") and "\n" not in text, text
        assert node in cluster.nodes  # its devices stay; only the families are refused
    assert "hami.io/vgpu-devices-to-allocate' is already another family's annotation key" in \
        cluster.rejected["node:n-key/families"]
    # a family the scheduler has is never replaced by a node's version of it
    cluster.upsert_node(_node("n-same", _family("Z1").model_copy(update={"memory": "zeta.io/other"})))
    assert cluster.vendors[1] == ZETA and "node:n-same/families" not in cluster.rejected
    # a vendor the scheduler does not serve adds nothing
    cluster.upsert_node(_node("n-other", _family("Q1", domain="zeta.io"), vendor="other"))
    assert [v.name for v in cluster.vendors] == ["nvidia", "zeta"]


def test_nodes_together_add_at_most_the_bound():
    cluster = ClusterState([NVIDIA, ZETA])
    cluster.upsert_node(_node("a", *(_family(f"A{i}") for i in range(MAX_ADDED_FAMILIES - 1))))
    cluster.upsert_node(_node("b", _family("B0")))
    assert len(_words(cluster)) == 1 + MAX_ADDED_FAMILIES
    cluster.upsert_node(_node("c", _family("C0")))
    assert len(_words(cluster)) == 1 + MAX_ADDED_FAMILIES
    assert "more than the 0 the vendor may still take" in cluster.rejected["node:c/families"]
    json.dumps(cluster.rejected)  # plain strings (exported as a metric)
