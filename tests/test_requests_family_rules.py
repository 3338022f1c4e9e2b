"""Per-family selector keys and the cores clamp: what a multi-family vendor declares, the parser reads."""

from __future__ import annotations

import pytest

from hami_hal.errors import InputError
from hami_hal.models import ResourceFamily, SelectorAnnotations, VendorInfo
from hami_hal.requests import parse_pod

VENDOR = VendorInfo(
    name="k", display_name="k", domains=["k.example/"],
    selectors=SelectorAnnotations(use_uuid="hami.io/use-k-uuid", mode="k.example/mode"),
    resources=[
        ResourceFamily(common_word="K-WHOLE", count="k.example/card", whole_device=True,
                       selectors=SelectorAnnotations(use_uuid="k.example/use-gpuuuid")),
        ResourceFamily(common_word="K-SLICE", count="k.example/slice", cores="k.example/slice-cores",
                       cores_above_100="clamp"),
    ],
)


def _pod(limits: dict, anns: dict) -> dict:
    return {"metadata": {"name": "p", "annotations": anns},
            "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}


def test_each_family_reads_its_own_selector_keys():
    anns = {"k.example/use-gpuuuid": "W-1", "hami.io/use-k-uuid": "S-1", "k.example/mode": "soft"}
    whole, sliced = parse_pod(_pod({"k.example/card": 1, "k.example/slice": 1}, anns), [VENDOR]).containers[0].requests
    assert whole.uuid_include == ["W-1"] and sliced.uuid_include == ["S-1"]
    assert whole.modes == ["soft"] == sliced.modes  # unset per-family fields fall back to the vendor's


def test_cores_above_100_clamped_only_where_the_family_says_so():
    (req,) = parse_pod(_pod({"k.example/slice": 1, "k.example/slice-cores": 150}, {}), [VENDOR]).containers[0].requests
    assert req.compute_percent == 100
    strict = VENDOR.model_copy(update={"resources": [VENDOR.resources[1].model_copy(update={"cores_above_100": "error"})]})
    with pytest.raises(InputError, match="slice-cores"):
        parse_pod(_pod({"k.example/slice": 1, "k.example/slice-cores": 150}, {}), [strict])


def test_memory_with_a_unit_is_bytes_where_the_family_says_so():
    fam = ResourceFamily(common_word="G", count="g.example/sgpu", memory="g.example/vmemory", memory_unit_mib=1024,
                         memory_suffix_means_bytes=True)
    vendor = VendorInfo(name="g", display_name="g", resources=[fam], domains=["g.example/"])

    def mem(value):
        pod = _pod({"g.example/sgpu": 1, "g.example/vmemory": value}, {})
        return parse_pod(pod, [vendor]).containers[0].requests[0].memory_mib

    assert mem(4) == 4096 and mem("4") == 4096  # a bare number is GiB
    assert mem("4Gi") == 4096 and mem("1500Mi") == 1500 and mem("1G") == 954  # a unit: bytes, rounded up to MiB
