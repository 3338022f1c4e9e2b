"""A pod using two device families of one vendor keeps both allocations through the extender."""

from __future__ import annotations

import json

from hami_scheduler.extender import Extender
from hami_scheduler.state import ClusterState

from hami_hal.hami_compat import allocation_from_pod
from hami_hal.models import AnnotationKeys, ResourceFamily, VendorInfo

#: MetaX-shaped: whole GPUs and sGPU shares, each family with its own HAMi keys (hami-compat.md §5.3).
TWO = VendorInfo(name="twofam", display_name="two families", resources=[
    ResourceFamily(common_word="TF-GPU", count="tf.example/gpu", whole_device=True,
                   annotations=AnnotationKeys(node_register="hami.io/node-tf-gpu-register",
                                              to_allocate="hami.io/tf-gpu-devices-to-allocate",
                                              allocated="hami.io/tf-gpu-devices-allocated")),
    ResourceFamily(common_word="TF-SGPU", count="tf.example/sgpu", memory="tf.example/vmemory",
                   cores="tf.example/vcore",
                   annotations=AnnotationKeys(node_register="hami.io/node-tf-sgpu-register",
                                              to_allocate="hami.io/tf-sgpu-devices-to-allocate",
                                              allocated="hami.io/tf-sgpu-devices-allocated")),
], domains=["tf.example/"])


def _node() -> dict:
    whole = [{"id": "W0", "count": 1, "devmem": 65536, "devcore": 100, "type": "TF-GPU-C500", "health": True}]
    shared = [{"id": "S0", "index": 1, "count": 8, "devmem": 65536, "devcore": 100, "type": "TF-SGPU-C500",
               "health": True}]
    return {"metadata": {"name": "n1", "annotations": {
        "hami.io/node-tf-gpu-register": json.dumps(whole), "hami.io/node-tf-sgpu-register": json.dumps(shared)}}}


def test_two_family_pod_keeps_both_allocations():
    cluster = ClusterState([TWO])
    cluster.upsert_node(_node())
    ext = Extender(cluster, None)
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
           "spec": {"containers": [{"name": "c", "resources": {"limits": {
               "tf.example/gpu": 1, "tf.example/sgpu": 1, "tf.example/vmemory": 4096, "tf.example/vcore": 20}}}]}}
    out = ext.filter({"Pod": pod, "NodeNames": ["n1"]})
    assert out.node_names == ["n1"]
    anns = ext.filter_annotations(pod, out.allocation)
    assert anns["hami.io/tf-gpu-devices-allocated"] == "W0,TF-GPU,65536,100:;"
    assert anns["hami.io/tf-sgpu-devices-allocated"] == "S0,TF-SGPU,4096,20:;"
    assert anns["hami.io/tf-gpu-devices-to-allocate"] == anns["hami.io/tf-gpu-devices-allocated"]
    # The persistent record reads back into the same two slices.
    pod["metadata"]["annotations"] = anns
    devices = {d.uuid: d for d in cluster.nodes["n1"].inventory.devices}
    back = allocation_from_pod(pod, [TWO], devices)
    assert sorted((s.uuid, s.common_word, s.memory_mib) for s in back.slices()) == [
        ("S0", "TF-SGPU", 4096), ("W0", "TF-GPU", 65536)]


def test_pod_annotator_adds_vendor_annotations_without_replacing_hami_keys():
    cluster = ClusterState([TWO])
    cluster.upsert_node(_node())

    def annotator(alloc, devices, pod):
        return {"tf.example/assigned": ",".join(s.uuid for s in alloc.slices()),
                "hami.io/tf-gpu-devices-allocated": "forged;"}

    ext = Extender(cluster, None, pod_annotator=annotator)
    pod = {"metadata": {"name": "q", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "resources": {"limits": {"tf.example/gpu": 1}}}]}}
    out = ext.filter({"Pod": pod, "NodeNames": ["n1"]})
    anns = ext.filter_annotations(pod, out.allocation)
    assert anns["tf.example/assigned"] == "W0"
    assert anns["hami.io/tf-gpu-devices-allocated"] == "W0,TF-GPU,65536,100:;"


def test_replayed_pods_keep_their_tenant_rule_values():
    """A pod rebuilt from its annotations still carries its QoS value, so a later pod with another value
    is refused on that device (the engine's tenants rule), as when both were placed by this scheduler."""
    from hami_hal.models import AttributeMatch, PodAnnotationRule

    qos = PodAnnotationRule(key="tf.example/qos", attribute="qos", match=AttributeMatch.TENANTS,
                            allowed=["a", "b"], default="a")
    vendor = TWO.model_copy(update={"resources": [TWO.resources[0], TWO.resources[1].model_copy(
        update={"pod_annotations": [qos]})]})
    cluster = ClusterState([vendor])
    cluster.upsert_node(_node())
    held = {"metadata": {"name": "held", "namespace": "default", "annotations": {
        "tf.example/qos": "b", "hami.io/vgpu-node": "n1", "hami.io/tf-sgpu-devices-allocated": "S0,TF-SGPU,1024,10:;"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": {"limits": {
            "tf.example/sgpu": 1, "tf.example/vmemory": 1024}}}]}}
    cluster.upsert_pod(held)
    ext = Extender(cluster, None)

    def pod(name, value):
        return {"metadata": {"name": name, "namespace": "default", "annotations": {"tf.example/qos": value}},
                "spec": {"containers": [{"name": "c", "resources": {"limits": {
                    "tf.example/sgpu": 1, "tf.example/vmemory": 1024}}}]}}

    refused = ext.filter({"Pod": pod("other", "a"), "NodeNames": ["n1"]})
    assert refused.node_names == [] and "CardTypeMismatch" in refused.failed["n1"]
    assert ext.filter({"Pod": pod("same", "b"), "NodeNames": ["n1"]}).node_names == ["n1"]
