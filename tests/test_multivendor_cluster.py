"""The multi-vendor cluster example: the extender places a mixed workload of every installed vendor with no
over-commit, checked after every placement by an independent ledger (examples/multi-vendor-cluster)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "multi-vendor-cluster" / "place_workload.py"


def _load():
    spec = importlib.util.spec_from_file_location("place_workload_example", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def pw():
    mod = _load()
    from hami_hal.manager import Hal

    have = {v.name for v in Hal().vendors()}
    if not {"kunlun", "cambricon", "metax"} <= have:
        pytest.skip(f"needs the kunlun, cambricon and metax plugins installed (have {sorted(have)})")
    return mod


def test_mixed_workload_places_without_overcommit(pw):
    result = pw.run(steps=250, seed=11)
    assert result["violations"] == 0 and result["over_commit_checks"] > 50
    for vendor in ("kunlun", "cambricon", "metax"):
        assert result["per_vendor"][vendor]["placed"] > 0
    # the two-family MetaX pod was placed at least once and kept both allocations (decode check in run())
    assert result["per_vendor"]["metax"].get("placed:gpu+sgpu", 0) > 0


def test_ledger_catches_an_overcommit(pw):
    """The independent check can fail: an allocation slipped past the engine is reported."""
    from hami_scheduler.state import ClusterState

    from hami_hal.manager import Hal
    from hami_hal.models import ContainerAllocation, DeviceSlice, PodAllocation

    hal = Hal()
    nodes, vendor_of, _ = pw.load_cluster(hal, SCRIPT.parent / "cluster.yaml")
    cluster = ClusterState(hal.vendors())
    for node in nodes:
        cluster.upsert_node(node)
    name = next(n for n, v in vendor_of.items() if v == "metax")
    dev = cluster.nodes[name].inventory.devices[0]
    for i in range(2):  # two whole-GPU holders of one card, recorded without the engine
        cluster.pods[f"default/forged-{i}"] = PodAllocation(namespace="default", name=f"forged-{i}", node=name,
            containers=[ContainerAllocation(name="c", index=0, slices=[DeviceSlice(
                vendor="metax", uuid=dev.uuid, device_index=dev.index, common_word="Metax-GPU",
                memory_mib=dev.memory_mib, compute_percent=100, exclusive=True)])])
    bad = pw.ledger_violations(cluster)
    assert any("MiB held >" in b for b in bad) and any("exclusive" in b for b in bad)
