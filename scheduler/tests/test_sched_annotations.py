"""HAMi annotation formats in and out; malformed inventories and allocations are refused cleanly."""

from __future__ import annotations

import json

import pytest
from hami_scheduler.annotations import (  # = hami_hal.hami_compat
    decode_allocation,
    encode_allocation,
    parse_node,
)
from hami_scheduler.state import ClusterState
from sched_testing import NVIDIA, gpu_node, gpu_pod

from hami_hal.errors import InputError


def test_inventory_json_and_csv_agree():
    js = parse_node(gpu_node("n", gpus=2, mem=16384, count=5, model="NVIDIA-Tesla T4"), [NVIDIA])
    csv = "GPU-n-0,5,16384,100,NVIDIA-Tesla T4,0,true,0,hami-core:GPU-n-1,5,16384,100,NVIDIA-Tesla T4,1,true,1,hami-core:"
    cs = parse_node({"metadata": {"name": "n", "annotations": {"hami.io/node-nvidia-register": csv}}}, [NVIDIA])
    assert [(d.uuid, d.memory_mib, d.partition.max_slots, d.model) for d in js.devices] == [
        (d.uuid, d.memory_mib, d.partition.max_slots, d.model) for d in cs.devices]
    legacy = "GPU-x,10,32768,100,NVIDIA-Tesla V100-PCIE-32GB,0,true:"
    inv = parse_node({"metadata": {"name": "m", "annotations": {"hami.io/node-nvidia-register": legacy}}}, [NVIDIA])
    assert inv.devices[0].mode == "hami-core" and inv.devices[0].index == 0


def test_allocation_string_round_trip():
    text = ";GPU-A,NVIDIA,2500,25:;GPU-B,NVIDIA,2500,25:GPU-C,NVIDIA,100,0:;"
    dec = decode_allocation(text)
    assert dec == [[], [("GPU-A", "NVIDIA", 2500, 25)], [("GPU-B", "NVIDIA", 2500, 25), ("GPU-C", "NVIDIA", 100, 0)]]
    assert decode_allocation("GPU-0,NVIDIA,3000,0:;,,0,0:;") == [[("GPU-0", "NVIDIA", 3000, 0)], []]
    from hami_hal.models import ContainerAllocation, DeviceSlice, PodAllocation

    sl = DeviceSlice(vendor="nvidia", uuid="GPU-A", device_index=0, common_word="NVIDIA", memory_mib=2500,
                     compute_percent=25)
    alloc = PodAllocation(name="p", node="n", containers=[ContainerAllocation(name="c", index=1, slices=[sl])])
    assert encode_allocation(alloc, "NVIDIA", 2) == ";GPU-A,NVIDIA,2500,25:;"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("[{\"id\": \"GPU-1\", \"count\": \"x\"}]", "count: 'x' must be an integer"),
        ("[{\"count\": 10}]", ".id"),
        ("[{\"id\": \"G\", \"count\": 10, \"devmem\": 0, \"devcore\": 100}]", "devmem: 0 must be between 1 and"),
        ("[not json", "not valid JSON"),
        ("GPU-1,10,1000", "neither a JSON array nor HAMi CSV"),
        ("GPU-1,10,1000:", "7 or 9 fields"),
    ],
)
def test_malformed_inventory_rejected_without_change(value, needle):
    cluster = ClusterState([NVIDIA])
    cluster.upsert_node(gpu_node("good"))
    before = cluster.snapshot()
    node = {"metadata": {"name": "good", "annotations": {"hami.io/node-nvidia-register": value}}}
    with pytest.raises(InputError, match="hami.io/node-nvidia-register") as exc:
        cluster.upsert_node(node)
    assert needle in str(exc.value)
    assert cluster.snapshot() == before


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("GPU-good-0,NVIDIA,100,10:", "must end with ';'"),
        ("GPU-good-0,NVIDIA,100:;", "uuid,type,mem,cores"),
        ("GPU-good-0,NVIDIA,abc,10:;", "memory of GPU-good-0: 'abc' must be an integer"),
        ("GPU-good-0,NVIDIA,100,150:;", "cores of GPU-good-0: '150' must be between 0 and 100"),
        ("GPU-nowhere,NVIDIA,100,10:;", "is not a device of node good"),
        ("GPU-good-0,NVIDIA,99999,10:;", "does not fit"),
    ],
)
def test_malformed_allocation_rejected_without_change(value, needle):
    cluster = ClusterState([NVIDIA])
    cluster.upsert_node(gpu_node("good"))
    ok = gpu_pod("ok")
    ok["metadata"]["annotations"] = {"hami.io/vgpu-node": "good", "hami.io/vgpu-devices-allocated": "GPU-good-1,NVIDIA,100,10:;"}
    ok["spec"]["nodeName"] = "good"  # bound: counted as it is (an unbound pod's allocation must also be exact)
    cluster.upsert_pod(ok)
    before = cluster.snapshot()
    pod = gpu_pod("bad")
    pod["metadata"]["annotations"] = {"hami.io/vgpu-node": "good", "hami.io/vgpu-devices-allocated": value}
    pod["spec"]["nodeName"] = "good"
    with pytest.raises(InputError) as exc:
        cluster.upsert_pod(pod)
    assert needle in str(exc.value)
    assert cluster.snapshot() == before


def test_hal_inventory_annotation_preferred():
    from hami_hal.models import NodeInventory

    base = parse_node(gpu_node("n", gpus=1), [NVIDIA])
    inv = NodeInventory(node="other", source="simulated", devices=base.devices)
    node = {"metadata": {"name": "n", "annotations": {"hami-hal.io/node-inventory": inv.model_dump_json(by_alias=True)}}}
    got = parse_node(node, [NVIDIA])
    assert got.node == "n" and got.source == "simulated" and len(got.devices) == 1
    with pytest.raises(InputError, match="hami-hal.io/node-inventory"):
        parse_node({"metadata": {"name": "n", "annotations": {"hami-hal.io/node-inventory": json.dumps({"x": 1})}}},
                   [NVIDIA])
