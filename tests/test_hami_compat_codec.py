"""The one HAMi wire codec: golden strings from HAMi's docs, round trips, and bounded decoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hami_hal.errors import InputError
from hami_hal.hami_compat import (
    RegisteredDevice,
    allocation_annotations,
    decode_allocation,
    decode_handshake,
    decode_lock,
    decode_register,
    encode_allocation,
    encode_handshake,
    encode_lock,
    encode_register_csv,
    encode_register_json,
    model_from_type,
)
from hami_hal.models import (
    AnnotationKeys,
    ContainerAllocation,
    DeviceSlice,
    PodAllocation,
    ResourceFamily,
    VendorInfo,
    model_key,
)

# -- golden strings (HAMi v2.10.0 docs: protocol.md, mock-device-plugin README, HAMi-core#110) ---------

MOCK_JSON = ('[{"id":"GPU-MOCK-0","count":10,"devmem":81920,"devcore":100,"type":"NVIDIA-A100-SXM4-80GB",'
             '"health":true,"numa":0,"mode":"hami-core"}]')
V100_CSV = "GPU-00552014-5c87-89ac-b1a6-7b53aa24b0ec,10,32768,100,NVIDIA-Tesla V100-PCIE-32GB,0,true:"
A4000_CSV = "GPU-ca904b47-1,10,16376,100,NVIDIA-NVIDIA RTX A4000,0,true,0,hami-core:"
DCU_CSV = "DCU-MOCK-0,2,16384,100,Z100L,0,true,0,hami-core:"


def test_golden_register_json_mock_device_plugin():
    (d,) = decode_register(MOCK_JSON, "hami.io/node-nvidia-register")
    assert d == RegisteredDevice(id="GPU-MOCK-0", count=10, devmem=81920, devcore=100,
                                 type="NVIDIA-A100-SXM4-80GB", numa=0, health=True, index=0, mode="hami-core")


@pytest.mark.parametrize(("value", "expect"), [
    (V100_CSV, ("GPU-00552014-5c87-89ac-b1a6-7b53aa24b0ec", 10, 32768, 100, "NVIDIA-Tesla V100-PCIE-32GB", 0,
                "hami-core")),
    (A4000_CSV, ("GPU-ca904b47-1", 10, 16376, 100, "NVIDIA-NVIDIA RTX A4000", 0, "hami-core")),
    (DCU_CSV, ("DCU-MOCK-0", 2, 16384, 100, "Z100L", 0, "hami-core")),
])
def test_golden_register_csv(value, expect):
    (d,) = decode_register(value)
    assert (d.id, d.count, d.devmem, d.devcore, d.type, d.index, d.mode) == expect and d.health
    assert decode_register(encode_register_csv([d])) == [d]


def test_register_json_is_omitempty_like_hami():
    d = RegisteredDevice(id="GPU-a", count=10, devmem=40960, devcore=100, type="NVIDIA-NVIDIA A100", health=False)
    text = encode_register_json([d])
    assert '"index"' not in text and '"numa"' not in text and '"health"' not in text
    assert decode_register(text) == [d]


@pytest.mark.parametrize(("value", "expect"), [
    ("GPU-0fc3eda5-1,NVIDIA,3000,0:;GPU-0fc3eda5-1,NVIDIA,5000,0:;",
     [[("GPU-0fc3eda5-1", "NVIDIA", 3000, 0)], [("GPU-0fc3eda5-1", "NVIDIA", 5000, 0)]]),
    (";GPU-A,NVIDIA,2500,25:;GPU-B,NVIDIA,2500,25:;", [[], [("GPU-A", "NVIDIA", 2500, 25)],
                                                       [("GPU-B", "NVIDIA", 2500, 25)]]),
    ("GPU-aaa,NVIDIA,10240,30:GPU-bbb,NVIDIA,10240,30:;",
     [[("GPU-aaa", "NVIDIA", 10240, 30), ("GPU-bbb", "NVIDIA", 10240, 30)]]),
    (",,0,0:;", [[]]),
    (";", [[]]),
])
def test_golden_allocation_strings(value, expect):
    assert decode_allocation(value) == expect


def test_golden_node_lock_and_handshake():
    lock = decode_lock("2026-08-21T10:00:00Z,default,gpu-pod")
    assert lock.at == datetime(2026, 8, 21, 10, tzinfo=UTC) and lock.held_by("default", "gpu-pod")
    assert encode_lock(lock.at, "default", "gpu-pod") == "2026-08-21T10:00:00Z,default,gpu-pod"
    legacy = decode_lock("2026-08-21T10:00:00Z")
    assert legacy.namespace is None and not legacy.held_by("default", "gpu-pod")
    assert legacy.expired(lock.at + timedelta(minutes=6), timedelta(minutes=5))
    hs = decode_handshake("Requesting_2026-08-21 10:00:00")
    assert (hs.state, hs.at) == ("requesting", datetime(2026, 8, 21, 10, tzinfo=UTC))
    assert encode_handshake("deleted", hs.at) == "Deleted_2026-08-21 10:00:00"


def test_model_key_joins_annotation_and_discovery_spellings():
    assert model_from_type("NVIDIA-NVIDIA H200", "NVIDIA") == "NVIDIA H200"
    assert model_from_type("Z100L", "DCU") == "Z100L"
    keys = {model_key(m, "nvidia") for m in ("NVIDIA-NVIDIA H200", "NVIDIA H200", "nvidia_h200", "H200")}
    assert keys == {"h200"}
    assert model_key("NVIDIA-A100-SXM4-80GB", "nvidia") == model_key("NVIDIA A100-SXM4-80GB", "nvidia")
    assert model_key("NVIDIA H100", "nvidia") != model_key("NVIDIA H200", "nvidia")


# -- round trips --------------------------------------------------------------------------------------

_ids = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=",:;\"\\[]{}"),
               min_size=1, max_size=40)
_types = st.text(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters=",:;\"\\"),
                 min_size=1, max_size=40).filter(lambda s: s.strip())
_devices = st.builds(
    RegisteredDevice, id=_ids, count=st.integers(1, 1024), devmem=st.integers(1, 2**31 - 1),
    devcore=st.integers(1, 10_000), type=_types, numa=st.integers(0, 64), health=st.booleans(),
    index=st.integers(0, 4096), mode=st.sampled_from(["hami-core", "mig", "mps"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_devices, max_size=12, unique_by=lambda d: d.id))
def test_register_round_trip_json_and_csv(devs):
    assert decode_register(encode_register_json(devs)) == devs if devs else True
    if devs:
        assert decode_register(encode_register_csv(devs)) == devs


_slices = st.builds(lambda u, cw, m, c: (u, cw, m, c), _ids, st.sampled_from(["NVIDIA", "DCU", "Metax-SGPU"]),
                    st.integers(0, 2**31 - 1), st.integers(0, 100))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_slices, max_size=4), min_size=1, max_size=6))
def test_allocation_round_trip(containers):
    alloc = PodAllocation(name="p", node="n", containers=[
        ContainerAllocation(name=f"c{i}", index=i, slices=[
            DeviceSlice(vendor="v", uuid=u, device_index=0, common_word=cw, memory_mib=m, compute_percent=c)
            for u, cw, m, c in ctr]) for i, ctr in enumerate(containers)])
    assert decode_allocation(encode_allocation(alloc)) == [list(c) for c in containers]
    only = decode_allocation(encode_allocation(alloc, "DCU", len(containers)))
    assert only == [[s for s in c if s[1] == "DCU"] for c in containers]


# -- two families keep both allocations ----------------------------------------------------------------

TWO = VendorInfo(name="twofam", display_name="two families", resources=[
    ResourceFamily(common_word="TF-GPU", count="tf.example/gpu", whole_device=True,
                   annotations=AnnotationKeys(to_allocate="hami.io/tf-gpu-devices-to-allocate",
                                              allocated="hami.io/tf-gpu-devices-allocated")),
    ResourceFamily(common_word="TF-SGPU", count="tf.example/sgpu", memory="tf.example/vmemory",
                   annotations=AnnotationKeys(to_allocate="hami.io/tf-sgpu-devices-to-allocate",
                                              allocated="hami.io/tf-sgpu-devices-allocated")),
])


def test_two_families_keep_both_allocations():
    alloc = PodAllocation(name="p", node="n", containers=[ContainerAllocation(name="c", index=0, slices=[
        DeviceSlice(vendor="twofam", uuid="G0", device_index=0, common_word="TF-GPU", memory_mib=100,
                    compute_percent=100, exclusive=True),
        DeviceSlice(vendor="twofam", uuid="G1", device_index=1, common_word="TF-SGPU", memory_mib=10,
                    compute_percent=20)])])
    out = allocation_annotations(alloc, [TWO], 1)
    assert out == {"hami.io/tf-gpu-devices-allocated": "G0,TF-GPU,100,100:;",
                   "hami.io/tf-gpu-devices-to-allocate": "G0,TF-GPU,100,100:;",
                   "hami.io/tf-sgpu-devices-allocated": "G1,TF-SGPU,10,20:;",
                   "hami.io/tf-sgpu-devices-to-allocate": "G1,TF-SGPU,10,20:;"}
    shared = TWO.model_copy(update={"annotations": AnnotationKeys(allocated="hami.io/tf-devices-allocated"),
                                    "resources": [f.model_copy(update={"annotations": None}) for f in TWO.resources]})
    assert allocation_annotations(alloc, [shared], 1) == {
        "hami.io/tf-devices-allocated": "G0,TF-GPU,100,100:G1,TF-SGPU,10,20:;"}


# -- bounds: a bad annotation is rejected whole, with the field and the value ---------------------------

@pytest.mark.parametrize(("value", "needle"), [
    ('[{"id":"G","count":10,"devmem":99999999999999999999,"devcore":100,"type":"T"}]', "devmem"),
    ('[{"id":"G","count":10,"devmem":-5,"devcore":100,"type":"T"}]', "must be between 1 and"),
    ('[{"id":"G","count":true,"devmem":5,"devcore":100,"type":"T"}]', "not a boolean"),
    ('[{"id":"G","count":10,"devmem":5.5,"devcore":100,"type":"T"}]', "must be an integer"),
    ('[{"id":"G","count":100000,"devmem":5,"devcore":100,"type":"T"}]', "count"),
    ('[{"id":"G","count":1,"devmem":5,"devcore":100,"type":"T","health":"maybe"}]', "true or false"),
    ('[{"id":"G,H","count":1,"devmem":5,"devcore":100,"type":"T"}]', "character ','"),
    ('[{"id":"' + "x" * 300 + '","count":1,"devmem":5,"devcore":100,"type":"T"}]', "longer than 256"),
    (json.dumps([{"id": f"G{i}", "count": 1, "devmem": 5, "type": "T"} for i in range(65)]), "more than 64"),
    ('{"id":"G"}', "neither a JSON array"),
    ('[' * 5000, "not valid JSON"),
    ("G,1,5,100,T,0,true:G,1,5,100,T,0,true:", "listed twice"),
    ("G,1,5,100,T,0,true,0", "neither a JSON array nor HAMi CSV"),
])
def test_register_bounds(value, needle):
    with pytest.raises(InputError, match="hami.io/node-x-register") as exc:
        decode_register(value, "hami.io/node-x-register")
    assert needle in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(("value", "needle"), [
    ("G,NVIDIA,99999999999999999999,10:;", "memory of G"),
    ("G,NVIDIA,100,101:;", "cores of G"),
    ("G,NVIDIA,-1,10:;", "memory of G"),
    ("G,NVIDIA,100,10:", "must end with ';'"),
    (";" * 300, "more than 256 containers"),
    ("x" * 300_000 + ";", "longer than"),
])
def test_allocation_bounds(value, needle):
    with pytest.raises(InputError) as exc:
        decode_allocation(value, "hami.io/vgpu-devices-allocated")
    assert needle in str(exc.value)


@pytest.mark.parametrize("value", ["yesterday,default,p", "2026-08-21T10:00:00Z,default", "2026-08-21T10:00:00Z,a,"])
def test_node_lock_rejects_malformed(value):
    with pytest.raises(InputError, match="hami.io/mutex.lock"):
        decode_lock(value)


@pytest.mark.parametrize("value", ["Requesting_", "Hello_2026-08-21 10:00:00", "Deleted_2026/08/21"])
def test_handshake_rejects_malformed(value):
    with pytest.raises(InputError, match="handshake"):
        decode_handshake(value)


def test_node_side_encode_round_trips_through_the_scheduler_side(inv, acme_vendor):
    """A node agent publishes from_device(...); the scheduler decodes the same devices (model key joins)."""
    from hami_hal.hami_compat import from_device, parse_node
    from hami_hal.models import AnnotationKeys

    vendor = acme_vendor.model_copy(update={"annotations": AnnotationKeys(node_register="hami.io/node-acme-register")})
    shares = [d for d in inv.devices if d.partition.kind.value == "shares"]
    value = encode_register_json([from_device(d) for d in shares])
    back = parse_node({"metadata": {"name": "n", "annotations": {"hami.io/node-acme-register": value}}}, [vendor])
    assert [(d.uuid, d.memory_mib, d.partition.max_slots, d.mode) for d in back.devices] == [
        (d.uuid, d.partition.memory_mib, d.partition.max_slots, d.mode) for d in shares]
    assert [d.model_key for d in back.devices] == [d.model_key for d in shares]


def test_register_sets_family_and_the_family_partition_shape():
    from hami_hal.hami_compat import parse_node
    from hami_hal.models import PartitionKind, PartitionModel, PartitionTemplate

    slices = PartitionModel(kind=PartitionKind.SLICES, memory_mib=1, templates=[
        PartitionTemplate(name="quarter", memory_mib=24576, compute_percent=25),
        PartitionTemplate(name="whole", memory_mib=98304, compute_percent=100)])
    vendor = VendorInfo(name="k", display_name="k", resources=[
        ResourceFamily(common_word="K-WHOLE", count="k.example/card", whole_device=True,
                       annotations=AnnotationKeys(node_register="hami.io/node-register-k-whole")),
        ResourceFamily(common_word="K-SLICE", count="k.example/slice", memory="k.example/slice-mem",
                       register_partition=slices,
                       annotations=AnnotationKeys(node_register="hami.io/node-register-k-slice"))])
    entry = '[{"id":"K-0","count":4,"devmem":98304,"devcore":100,"type":"K-SLICE","health":true}]'
    inv = parse_node({"metadata": {"name": "n", "annotations": {"hami.io/node-register-k-slice": entry}}}, [vendor])
    (dev,) = inv.devices
    assert dev.family == "K-SLICE" and dev.partition.kind is PartitionKind.SLICES
    assert (dev.partition.memory_mib, dev.partition.max_slots) == (98304, 4)
    assert [t.name for t in dev.partition.templates] == ["quarter", "whole"]
