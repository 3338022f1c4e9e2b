"""A node event whose inventory did not change does not parse the inventory again (state.ClusterState._parse_node).

Node objects change far more often than their inventories (the node lock on every bind, the agent's handshake,
labels, status); on main every such watch event decoded and checked the whole inventory annotation again. A refused
inventory, or a refused pod allocation, is parsed and logged once per value too (state.ClusterState._once)."""

from __future__ import annotations

import copy
import json
import time

import pytest
from hami_scheduler import state
from hami_scheduler.refusals import Memo
from hami_scheduler.state import ClusterState
from sched_fakeapi import FakeApiServer
from sched_testing import NVIDIA, gpu_node, gpu_pod, start_stack

from hami_hal.errors import HalError
from hami_hal.hami_compat import HAL_INVENTORY, NODE_LOCK
from hami_hal.models import Device, NodeInventory, Provenance

N = 20


def hal_node(name: str, memory_mib: int = 40960) -> dict:
    """A node carrying hami-hal's inventory annotation (two NVIDIA cards)."""
    devs = [Device(vendor="nvidia", index=i, uuid=f"GPU-{name}-{i}", model="A100", hami_type="NVIDIA-A100",
                   memory_mib=memory_mib, provenance=Provenance(source="real")) for i in range(2)]
    inv = NodeInventory(node=name, source="real", devices=devs)
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {HAL_INVENTORY: inv.model_dump_json(by_alias=True)}}}


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """A spy on the scheduler's node parser: the node name, once per parse."""
    seen: list[str] = []
    real = state.parse_node

    def spy(node, vendors):
        seen.append(node["metadata"]["name"])
        return real(node, vendors)

    monkeypatch.setattr(state, "parse_node", spy)
    return seen


def _event(node: dict, i: int) -> dict:
    """The same node a watch event later: another resourceVersion, lock and label; the inventory as it was."""
    out = copy.deepcopy(node)
    meta = out["metadata"]
    meta["resourceVersion"] = str(100 + i)
    meta.setdefault("labels", {})["tick"] = str(i)
    meta["annotations"][NODE_LOCK] = f"2026-12-05T21:00:{i % 60:02d}Z,default,pod-{i}"
    return out


@pytest.mark.parametrize("make", [hal_node, lambda name: gpu_node(name, gpus=2)], ids=["hal-inventory", "hami-register"])
def test_an_unchanged_inventory_is_parsed_once_and_a_changed_one_again(parses, make):
    cluster = ClusterState([NVIDIA])
    node = make("n1")
    for i in range(N):
        cluster.upsert_node(_event(node, i))
    assert parses == ["n1"]
    assert cluster.nodes["n1"].resource_version == str(100 + N - 1)  # every event still refreshed the entry
    changed = make("n1") if make is not hal_node else hal_node("n1", memory_mib=81920)
    if make is not hal_node:  # the register annotation: one card less
        key = "hami.io/node-nvidia-register"
        changed["metadata"]["annotations"][key] = json.dumps(json.loads(changed["metadata"]["annotations"][key])[:1])
    cluster.upsert_node(_event(changed, N))
    assert parses == ["n1", "n1"]
    assert len(cluster.nodes["n1"].inventory.devices) == (2 if make is hal_node else 1)
    cluster.upsert_node(_event(node, N + 1))  # and back: the value changed again, so it is parsed again
    assert parses == ["n1", "n1", "n1"] and len(cluster.nodes["n1"].state.devices) == 2


def test_nodes_are_remembered_apart_and_forgotten_when_removed(parses):
    cluster = ClusterState([NVIDIA])
    a, b = hal_node("a"), hal_node("b")
    for i in range(3):
        cluster.upsert_node(_event(a, i))
        cluster.upsert_node(_event(b, i))
    assert sorted(parses) == ["a", "b"]
    cluster.remove_node("a")
    cluster.upsert_node(_event(a, 9))
    assert sorted(parses) == ["a", "a", "b"]


BAD = '{"node": "n1", "source": "real", "devices": [{"uuid": 7}]}'


def _refusals(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hami_scheduler.state" and " refused: " in r.getMessage()]


def _bad(node: dict, value: str = BAD) -> dict:
    out = copy.deepcopy(node)
    out["metadata"]["annotations"][HAL_INVENTORY] = value
    return out


def test_a_bad_inventory_is_parsed_and_logged_once_per_value_and_refused_on_every_event(parses, caplog):
    """A flood of events from a node whose inventory is malformed parses it once and logs it once, and every event is
    still refused with the same line; another bad value is parsed (and logged) once more; the node keeps its last good
    inventory meanwhile."""
    cluster = ClusterState([NVIDIA])
    good = hal_node("n1")
    cluster.upsert_node(good)
    refusals = set()
    for i in range(N):
        with pytest.raises(HalError, match=HAL_INVENTORY) as err:
            cluster.upsert_node(_event(_bad(good), i))
        refusals.add(str(err.value))
    assert parses == ["n1", "n1"] and len(refusals) == 1 and "\n" not in refusals.pop()
    assert len(_refusals(caplog)) == 1 and _refusals(caplog)[0].startswith("node n1 refused: hami-hal.io/node-inventory")
    other = BAD.replace("7", "8")
    for i in range(N):  # two bad values in turn: each is parsed and logged once
        with pytest.raises(HalError, match="8" if i % 2 == 0 else "7"):
            cluster.upsert_node(_event(_bad(good, other if i % 2 == 0 else BAD), i))
    assert parses == ["n1"] * 3 and len(_refusals(caplog)) == 2
    assert len(cluster.nodes["n1"].inventory.devices) == 2
    cluster.vendors = list(cluster.vendors)  # other vendors (a node taught families): the value is read again
    with pytest.raises(HalError):
        cluster.upsert_node(_event(_bad(good), N))
    assert parses == ["n1"] * 4 and len(_refusals(caplog)) == 2  # the same value is not logged twice


def test_the_memory_of_refusals_is_bounded_and_an_evicted_value_is_parsed_again(parses, caplog):
    """A node that changes its bad value on every event is parsed and logged each time (each value is new) and the
    memory stays at its bound; a value evicted from it is parsed again."""
    cluster = ClusterState([NVIDIA])
    cluster._refused = Memo(8)
    for i in range(3 * 8):
        with pytest.raises(HalError):
            cluster.upsert_node(_event(_bad(hal_node("n1"), BAD.replace("7", str(1000 + i))), i))
    assert len(parses) == 24 and len(_refusals(caplog)) == 24 and len(cluster._refused) == 8
    with pytest.raises(HalError):
        cluster.upsert_node(_bad(hal_node("n1"), BAD.replace("7", "1023")))  # the newest: remembered
    with pytest.raises(HalError):
        cluster.upsert_node(_bad(hal_node("n1"), BAD.replace("7", "1000")))  # the oldest: evicted
    assert len(parses) == 25


def test_a_pods_bad_allocation_is_parsed_and_logged_once_per_value_and_again_when_the_node_changes(monkeypatch, caplog):
    """A pod's allocation naming a device its node lacks: its status events parse it once, each is still refused;
    a changed annotation, or a node whose devices changed (the device may exist now), is parsed again."""
    seen: list[str] = []
    real = state.allocation_from_pod

    def spy(pod, vendors, devices):
        seen.append(pod["metadata"]["name"])
        return real(pod, vendors, devices)

    monkeypatch.setattr(state, "allocation_from_pod", spy)
    cluster = ClusterState([NVIDIA])
    cluster.upsert_node(gpu_node("n1", gpus=2))
    key = "hami.io/vgpu-devices-allocated"
    pod = gpu_pod("p", annotations={"hami.io/vgpu-node": "n1", key: "GPU-elsewhere,NVIDIA,4096,25:;"})
    for i in range(N):
        event = copy.deepcopy(pod)
        event["metadata"]["resourceVersion"] = str(i)
        event["status"] = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "reason": f"r{i}"}]}
        with pytest.raises(HalError, match="GPU-elsewhere"):
            cluster.upsert_pod(event)
    assert seen == ["p"] and len(_refusals(caplog)) == 1
    assert _refusals(caplog)[0].startswith("pod default/p allocation refused: ")
    pod["metadata"]["annotations"][key] = "GPU-n1-0,NVIDIA,4096,25:;"  # a device it has: placed
    cluster.upsert_pod(pod)
    assert seen == ["p", "p"] and "default/p" in cluster.pods
    bad = gpu_pod("q", annotations={"hami.io/vgpu-node": "n1", key: "GPU-n1-5,NVIDIA,4096,25:;"})
    for _ in range(2):
        with pytest.raises(HalError):
            cluster.upsert_pod(bad)
    assert seen == ["p", "p", "q"] and len(_refusals(caplog)) == 2
    cluster.upsert_node(gpu_node("n1", gpus=3))  # new devices: the refusal may no longer hold, so it is read again
    with pytest.raises(HalError):
        cluster.upsert_pod(bad)
    assert seen == ["p", "p", "q", "q"] and len(_refusals(caplog)) == 3
    cluster.upsert_node(gpu_node("n1", gpus=8))  # now GPU-n1-5 is there: the same value is placed
    cluster.upsert_pod(bad)
    assert "default/q" in cluster.pods and seen == ["p", "p", "q", "q", "q"]


def test_through_the_watch_an_unchanged_inventory_is_parsed_once_and_a_bad_one_skips_the_node(parses):
    api = FakeApiServer().start()
    api.add_node(hal_node("n1"))
    stack = start_stack(api, watch=True)
    try:
        def wait(pred) -> None:
            for _ in range(200):
                if pred():
                    return
                time.sleep(0.02)
            raise AssertionError(f"not reached: {parses} {stack.cluster.rejected}")

        for i in range(N):  # the lock annotation changes N times
            with api.cond:
                api.nodes["n1"]["metadata"]["annotations"][NODE_LOCK] = f"2026-12-05T21:00:{i:02d}Z,default,p{i}"
                api._bump("nodes", "MODIFIED", api.nodes["n1"])
        wait(lambda: stack.cluster.nodes["n1"].resource_version == api.nodes["n1"]["metadata"]["resourceVersion"])
        assert parses.count("n1") == 1
        with api.cond:
            api.nodes["n1"]["metadata"]["annotations"][HAL_INVENTORY] = "{not json"
            api._bump("nodes", "MODIFIED", api.nodes["n1"])
        wait(lambda: "node:n1" in stack.cluster.rejected)
        reason = stack.cluster.rejected["node:n1"]
        assert HAL_INVENTORY in reason and "not JSON" in reason and "\n" not in reason
        assert parses.count("n1") == 2
    finally:
        stack.stop()
