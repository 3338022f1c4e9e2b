"""Filter records the request annotations it placed the pod with (``hami-hal.io/placed-request``), over every
request key of the vendors it knows, so the node agent can tell a request changed between Filter and Allocate."""

from __future__ import annotations

from hami_scheduler.extender import Extender
from hami_scheduler.state import ClusterState
from test_sched_two_families import TWO, _node

from hami_hal.hami_compat import PLACED_REQUEST, decode_placed, family_request_keys, request_changes
from hami_hal.models import SelectorAnnotations

USE = "tf.example/use-uuid"
VENDOR = TWO.model_copy(update={"selectors": SelectorAnnotations(use_uuid=USE, nouse_uuid="tf.example/nouse-uuid")})


def _filtered(annotations: dict[str, str]) -> dict[str, str]:
    cluster = ClusterState([VENDOR])
    cluster.upsert_node(_node())
    ext = Extender(cluster, None)
    pod = {"metadata": {"name": "p", "namespace": "default", "annotations": annotations},
           "spec": {"containers": [{"name": "c", "resources": {"limits": {"tf.example/sgpu": 1}}}]}}
    out = ext.filter({"Pod": pod, "NodeNames": ["n1"]})
    assert out.node_names == ["n1"], out
    return ext.filter_annotations(pod, out.allocation)


def test_filter_records_the_request_annotations_it_placed():
    request = {USE: "S0", "hami.io/gpu-scheduler-policy": "binpack", "team": "a"}
    record = decode_placed(_filtered(request)[PLACED_REQUEST])
    assert sorted(record) == ["hami.io/gpu-scheduler-policy", USE]  # request keys only, present ones only
    keys = family_request_keys(VENDOR, VENDOR.resources[1])
    assert USE in keys and "tf.example/nouse-uuid" in keys
    assert request_changes(record, request, keys) == []
    assert request_changes(record, {**request, "team": "b"}, keys) == []
    assert request_changes(record, {**request, USE: "W0"}, keys) == [f"metadata.annotations[\"{USE}\"] was changed "
                                                                        "to 'W0'"]
    assert request_changes(record, {**request, "tf.example/nouse-uuid": "S0"}, keys) == [
        'metadata.annotations["tf.example/nouse-uuid"] was added']


def test_a_pod_without_request_annotations_records_an_empty_object():
    assert _filtered({})[PLACED_REQUEST] == "{}"
