"""An agent rolled back one version reads the container records its successor wrote (hami_hal.models.skew):
fields it does not know are ignored, so the partitions those records hold are still seen as taken and still
destroyed at cleanup. A record of a newer major format is skipped with one line, logged once.

On main (992e0fa) a record with one field more was skipped silently: the rolled-back agent leaked the pod's MIG
instance at cleanup (cleanup() == 0) and counted its placement as free."""

from __future__ import annotations

import json
import logging

from node_agent_fixtures import bound_pod

from hami_hal.node.statedirs import ContainerRecord, StateDirs

RESOURCE = "nvidia.com/gpu"


def _as_newer_agent(state: StateDirs) -> None:
    """Rewrite every record as a newer agent would: same meaning, fields this agent has never seen."""
    for f in state.records.glob("*.json"):
        rec = json.loads(f.read_text())
        rec["future_field"] = {"x": 1}
        for handles in rec["partitions"].values():
            for h in handles:
                h["future_handle_field"] = 2  # inside a free-form dict: kept as it is
        f.write_text(json.dumps(rec))


def test_a_rolled_back_agent_still_cleans_up_its_successors_partitions(mig_agent, kubelet, api, caplog):
    dev = mig_agent.inventory.devices[0]
    bound_pod(api, "m1", f"{dev.uuid},NVIDIA,9728,13:;", bind_time=1)
    kubelet.allocate(RESOURCE, [[kubelet.healthy(RESOURCE)[0]]])
    (made, _), = mig_agent.state.list()
    handle = made.partitions["nvidia"][0]["handle"]
    _as_newer_agent(mig_agent.state)
    cleaned = 0
    try:
        with caplog.at_level(logging.WARNING, logger="hami_hal.models.skew"):
            seen = mig_agent.state.list()
            mig_agent.state.list()
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and "future_field" in lines[0], lines
        (rec, _), = seen  # the record is read: its placement is what the allocator counts as taken
        assert rec.pod == "m1" and rec.partitions["nvidia"][0]["handle"]["placement"] == {"start": 0, "size": 1}
        assert rec.partitions["nvidia"][0]["future_handle_field"] == 2
        api.delete_pod("default", "m1")
        cleaned = mig_agent.cleanup()
        assert cleaned == 1
    finally:
        if not cleaned:  # main: the instance leaked; give it back so later tests of this process start clean
            mig_agent.hal.destroy_partition(dev, handle)


def test_a_record_of_a_newer_major_format_is_skipped_with_one_line(tmp_path, caplog):
    state = StateDirs(tmp_path)
    state.create(ContainerRecord(pod_uid="0000-a", namespace="default", pod="a", container="main"))
    state.create(ContainerRecord(pod_uid="0000-b", namespace="default", pod="b", container="main"))
    f = state.records / "0000-b_main.json"
    f.write_text(json.dumps({**json.loads(f.read_text()), "format_version": 2}))
    with caplog.at_level(logging.WARNING, logger="hami_hal.node.statedirs"):
        assert [r.pod for r, _ in state.list()] == ["a"]
        assert [r.pod for r, _ in state.list()] == ["a"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "container record 0000-b_main.json.format_version: 2 is newer than this version reads" in lines[0]


def test_the_agent_writes_its_record_format_version(tmp_path):
    state = StateDirs(tmp_path)
    state.create(ContainerRecord(pod_uid="0000-a", namespace="default", pod="a", container="main"))
    assert json.loads((state.records / "0000-a_main.json").read_text())["format_version"] == 1
