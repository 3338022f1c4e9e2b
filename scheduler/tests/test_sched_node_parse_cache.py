"""A node event whose inventory did not change does not parse the inventory again (state.ClusterState._parse_node).

Node objects change far more often than their inventories (the node lock on every bind, the agent's handshake,
labels, status); on main every such watch event decoded and checked the whole inventory annotation again."""

from __future__ import annotations

import copy
import json
import time

import pytest
from hami_scheduler import state
from hami_scheduler.state import ClusterState
from sched_fakeapi import FakeApiServer
from sched_testing import NVIDIA, gpu_node, start_stack

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


def test_a_bad_inventory_is_refused_on_every_event_and_the_good_one_is_not_reused(parses):
    cluster = ClusterState([NVIDIA])
    good = hal_node("n1")
    cluster.upsert_node(good)
    bad = copy.deepcopy(good)
    bad["metadata"]["annotations"][HAL_INVENTORY] = '{"node": "n1", "source": "real", "devices": [{"uuid": 7}]}'
    for i in range(3):
        with pytest.raises(Exception, match=HAL_INVENTORY) as err:
            cluster.upsert_node(_event(bad, i))
        assert "\n" not in str(err.value)
    assert parses == ["n1"] * 4  # a refusal is not remembered: each event parses (and refuses) it again


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
        wait(lambda: "node/n1" in stack.cluster.rejected)
        reason = stack.cluster.rejected["node/n1"]
        assert HAL_INVENTORY in reason and "not JSON" in reason and "\n" not in reason
        assert parses.count("n1") == 2
    finally:
        stack.stop()
