"""Pod -> PodRequest with HAMi's derivation rules, driven by the acme plugin's declared names."""

from __future__ import annotations

import pytest

from hami_hal.errors import InputError
from hami_hal.models import DevicePolicy, NodePolicy, ResourceFamily, VendorInfo
from hami_hal.requests import parse_pod, parse_pod_detailed

XPU, MEM, PCT, CORES, PRIO, CARD = (
    "acme.example/xpu", "acme.example/xpu-mem", "acme.example/xpu-mem-percentage",
    "acme.example/xpu-cores", "acme.example/xpu-priority", "acme.example/card",
)


def pod(*limits: dict, annotations: dict | None = None, init: list[dict] | None = None,
        requests: list[dict] | None = None) -> dict:
    ctrs = []
    for i, lim in enumerate(limits):
        res: dict = {"limits": lim}
        if requests and i < len(requests):
            res["requests"] = requests[i]
        ctrs.append({"name": f"c{i}", "image": "x", "resources": res})
    spec: dict = {"containers": ctrs}
    if init is not None:
        spec["initContainers"] = [{"name": f"i{i}", "resources": {"limits": lim}} for i, lim in enumerate(init)]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "annotations": annotations or {}}, "spec": spec}


def one(p: dict, vendor: VendorInfo):
    req = parse_pod(p, [vendor])
    (r,) = [r for c in req.containers for r in c.requests]
    return r


def test_reference_pod_shape(acme_vendor):
    r = one(pod({XPU: 2, MEM: 10240, CORES: 30, "cpu": "1"}), acme_vendor)
    assert (r.vendor, r.common_word, r.count, r.memory_mib, r.compute_percent) == ("acme", "ACME", 2, 10240, 30)
    assert r.memory_percent is None and r.policy is DevicePolicy.SPREAD and not r.whole_device


def test_count_from_limits_falls_back_to_requests(acme_vendor):
    p = pod({}, requests=[{XPU: "3", MEM: "1Ki"}])
    r = one(p, acme_vendor)
    assert r.count == 3 and r.memory_mib == 1024


def test_memory_is_scaled_by_the_family_unit():
    vendor = VendorInfo(name="cam", display_name="Cam", domains=["cam.example/"], resources=[
        ResourceFamily(common_word="MLU", count="cam.example/vmlu", memory="cam.example/vmem", memory_unit_mib=256,
                       cores="cam.example/vcore")])
    p = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "resources": {"limits": {"cam.example/vmlu": 1, "cam.example/vmem": 4}}}]}}
    assert one(p, vendor).memory_mib == 1024


@pytest.mark.parametrize(("pct", "memory_percent"), [(50, 50), (100, 100), (0, 100), (101, 100)])
def test_percentage_zero_and_101_mean_unset(acme_vendor, pct, memory_percent):
    r = one(pod({XPU: 1, PCT: pct, CORES: 10}), acme_vendor)
    assert r.memory_mib is None and r.memory_percent == memory_percent


def test_default_memory_and_cores_come_from_the_family():
    vendor = VendorInfo(name="d", display_name="D", resources=[
        ResourceFamily(common_word="D", count="d.example/x", memory="d.example/mem", cores="d.example/cores",
                       default_memory_mib=2048, default_cores=15)])
    p = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "resources": {"limits": {"d.example/x": 1}}}]}}
    r = one(p, vendor)
    assert r.memory_mib == 2048 and r.compute_percent == 15  # not exclusive: no cores=100 rule


def test_webhook_adds_default_count_when_only_memory_or_cores(acme_vendor):
    assert one(pod({MEM: 3000}), acme_vendor).count == 1
    assert one(pod({CORES: 20}), acme_vendor).count == 1
    assert one(pod({PCT: 40}), acme_vendor).count == 1


def test_webhook_count_with_exclusive_memory_and_no_cores_means_full_cores(acme_vendor):
    assert one(pod({XPU: 1}), acme_vendor).compute_percent == 100
    assert one(pod({XPU: 1, PCT: 100}), acme_vendor).compute_percent == 100
    assert one(pod({XPU: 1, MEM: 4096}), acme_vendor).compute_percent == 0
    assert one(pod({XPU: 1, PCT: 100, CORES: 5}), acme_vendor).compute_percent == 5


def test_whole_device_family(acme_vendor):
    r = one(pod({CARD: 2}), acme_vendor)
    assert r.whole_device and r.common_word == "ACME-CARD" and r.count == 2 and r.compute_percent == 100


def test_priority(acme_vendor):
    assert one(pod({XPU: 1, MEM: 10, PRIO: 1}), acme_vendor).priority == 1
    assert one(pod({XPU: 1, MEM: 10}), acme_vendor).priority is None


def test_zero_count_is_no_request_and_other_resources_are_ignored(acme_vendor):
    req = parse_pod(pod({XPU: 0, "cpu": "500m", "memory": "1Gi", "other.example/fpga": 1}), [acme_vendor])
    assert not req.has_devices and req.containers[0].requests == []


def test_init_containers_come_first_with_positional_indexes(acme_vendor):
    req = parse_pod(pod({XPU: 1, MEM: 100}, {}, init=[{XPU: 1, MEM: 50}]), [acme_vendor])
    assert [(c.name, c.index, c.init, len(c.requests)) for c in req.containers] == [
        ("i0", 0, True, 1), ("c0", 1, False, 1), ("c1", 2, False, 0)]


def test_selectors_policies_and_numa(acme_vendor):
    anns = {
        "acme.example/use-xputype": "X100, T200", "acme.example/nouse-xputype": "Z9",
        "acme.example/use-xpuuuid": "ACME-1,ACME-2", "acme.example/nouse-xpuuuid": "ACME-3",
        "acme.example/xpu-mode": "hami-core", "acme.example/numa-bind": "true",
        "hami.io/gpu-scheduler-policy": "binpack,numa", "hami.io/node-scheduler-policy": "spread",
        "hami.io/device-scoring-weights": "slot=1,core=1,memory=3",
    }
    req = parse_pod(pod({XPU: 1, MEM: 10}, annotations=anns), [acme_vendor])
    r = req.containers[0].requests[0]
    assert r.type_include == ["X100", "T200"] and r.type_exclude == ["Z9"]
    assert r.uuid_include == ["ACME-1", "ACME-2"] and r.uuid_exclude == ["ACME-3"]
    assert r.modes == ["hami-core"] and r.numa_bind and r.policy is DevicePolicy.BINPACK
    assert req.node_policy is NodePolicy.SPREAD and req.annotations == anns


def test_detailed_parse_records_source_fields(acme_vendor):
    parsed = parse_pod_detailed(pod({XPU: 2, MEM: 10, CORES: 5},
                                    annotations={"acme.example/use-xputype": "X100"}), [acme_vendor])
    f = parsed.fields[(0, 0)]
    assert f.count == 'spec.containers[0].resources.limits["acme.example/xpu"]'
    assert f.cores == 'spec.containers[0].resources.limits["acme.example/xpu-cores"]'
    assert f.type_selector == 'metadata.annotations["acme.example/use-xputype"]'


def test_json_style_quantities_and_kubernetes_suffixes(acme_vendor):
    assert one(pod({XPU: "1", MEM: "2k"}), acme_vendor).memory_mib == 2000
    assert one(pod({XPU: 1.0, MEM: "1e3"}), acme_vendor).memory_mib == 1000


BAD = [
    (pod({XPU: 1, MEM: -5}), 'limits["acme.example/xpu-mem"]', "-5", "negative"),
    (pod({XPU: 1, MEM: "lots"}), 'limits["acme.example/xpu-mem"]', "lots", "quantity"),
    (pod({XPU: 1, MEM: "1.5"}), 'limits["acme.example/xpu-mem"]', "1.5", "whole number"),
    (pod({XPU: 1, MEM: True}), 'limits["acme.example/xpu-mem"]', "True", "not a number"),
    (pod({XPU: 1, CORES: 130}), 'spec.containers[0].resources.limits["acme.example/xpu-cores"]', "130", "0 and 100"),
    (pod({XPU: 1, PCT: 150}), 'limits["acme.example/xpu-mem-percentage"]', "150", "0 and 100"),
    (pod({XPU: -1}), 'limits["acme.example/xpu"]', "-1", "negative"),
    (pod({XPU: 0, MEM: 5}), 'limits["acme.example/xpu"]', "0", "asks for a share"),
    (pod({XPU: 1, PRIO: 7}), 'limits["acme.example/xpu-priority"]', "7", "0 (high) or 1 (low)"),
    (pod({XPU: 1, MEM: 2**40}), 'limits["acme.example/xpu-mem"]', str(2**40), "too large"),
    (pod({"acme.example/xpu-memory": 10}), 'limits["acme.example/xpu-memory"]', "acme.example/xpu-memory",
     "not a resource of vendor acme"),
    (pod({XPU: 1}, requests=[{XPU: 2}]), 'requests["acme.example/xpu"]', "2", "differs from the limit"),
    (pod({XPU: 1}, annotations={"acme.example/use-xputype": "X100", "acme.example/nouse-xputype": "x100"}),
     'metadata.annotations["acme.example/nouse-xputype"]', "x100", "excludes type"),
    (pod({XPU: 1}, annotations={"acme.example/use-xpuuuid": "A,B", "acme.example/nouse-xpuuuid": "B"}),
     'metadata.annotations["acme.example/nouse-xpuuuid"]', "B", "excludes uuid"),
    (pod({XPU: 1}, annotations={"acme.example/numa-bind": "yes"}), "numa-bind", "yes", '"true" or "false"'),
    (pod({XPU: 1}, annotations={"acme.example/numa-bind": True}), "numa-bind", "True", "must be a string"),
    (pod({XPU: 1}, annotations={"hami.io/gpu-scheduler-policy": "fastest"}), "gpu-scheduler-policy", "fastest",
     "unknown policy"),
    (pod({XPU: 1}, annotations={"hami.io/gpu-scheduler-policy": "binpack,spread"}), "gpu-scheduler-policy",
     "binpack,spread", "both binpack and spread"),
    (pod({XPU: 1}, annotations={"hami.io/node-scheduler-policy": "random"}), "node-scheduler-policy", "random",
     "binpack or spread"),
    (pod({XPU: 1}, annotations={"hami.io/device-scoring-weights": "slot=1,core=x"}), "device-scoring-weights",
     "slot=1,core=x", "slot=<int>"),
    (pod({XPU: 1}, annotations={"hami.io/device-scoring-weights": "slot=0,core=0,memory=0"}),
     "device-scoring-weights", "slot=0", "at least one above 0"),
    ({"kind": "Deployment", "metadata": {"name": "d"}}, "kind", "Deployment", "expected Pod"),
    ({"kind": "Pod", "metadata": {}, "spec": {"containers": [{"name": "a"}]}}, "metadata.name", "None", "required"),
    ({"metadata": {"name": "p"}, "spec": {}}, "spec.containers", "None", "required"),
    ({"metadata": {"name": "p"}, "spec": {"containers": [{"image": "x"}]}}, "spec.containers[0].name", "None",
     "required"),
    ({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "resources": {"limits": [1]}}]}},
     "spec.containers[0].resources.limits", "[1]", "mapping"),
    (["not", "a", "pod"], "pod", "['not'", "mapping"),
]


@pytest.mark.parametrize(("doc", "field", "value", "why"), BAD, ids=[b[3] + "-" + b[1][-30:] for b in BAD])
def test_bad_input_names_field_and_value(acme_vendor, doc, field, value, why):
    with pytest.raises(InputError) as exc:
        parse_pod(doc, [acme_vendor])
    msg = str(exc.value)
    assert "\n" not in msg
    assert field in exc.value.field and value in repr(exc.value.value) and why in msg


def test_foreign_extended_resources_are_reported_as_ignored(acme_vendor):
    parsed = parse_pod_detailed(pod({XPU: 1, "nvidia.com/gpu": 1, "cpu": 2, "example.com/fpga": 1}), [acme_vendor])
    assert [n for _, n in parsed.ignored] == ["nvidia.com/gpu", "example.com/fpga"]
    assert parsed.ignored[0][0] == 'spec.containers[0].resources.limits["nvidia.com/gpu"]'
