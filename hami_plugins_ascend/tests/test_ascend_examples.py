"""HAMi's documented Ascend example pods and ours run unchanged through ``hami allocate`` (the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hami_hal.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def _only_ascend(monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "ascend")


@pytest.mark.parametrize("pod, node, expect", [
    ("ascend-vnpu-pod.yaml", "ascend-8x910b3", [("vir05_1c_16g", 16384)]),
    ("ascend-4card-pod.yaml", "ascend-8x910b3", [("whole-card", 65536)] * 4),
    ("ascend-soft-pod.yaml", "ascend-8x910b3-vnpu-core", [(None, 8192)]),
])
def test_example_pod_allocates(capsys, pod, node, expect):
    rc = main(["allocate", str(EXAMPLES / pod), "--backend", "sim", "--sim-node", node, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    slices = [s for c in out["allocation"]["containers"] for s in c["slices"]]
    assert [(s["template"], s["memory_mib"]) for s in slices] == expect
    assert any(k.startswith("hami.io/Ascend910B3-devices-allocated") for k in out["annotations"])


def test_refused_example_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "ascend-vnpu-pod.yaml").read_text().replace('"2000"', '"70000"'))
    rc = main(["allocate", str(bad), "--backend", "sim", "--sim-node", "ascend-8x910b3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "huawei.com/Ascend910B3-memory" in err[0] and "70000" in err[0]


def test_documented_pod_through_the_extender_on_a_hami_registered_node():
    """A node registered the way HAMi's ascend-device-plugin registers it (JSON with custominfo.NetworkID)."""
    pytest.importorskip("hami_scheduler.extender", reason="needs the scheduler distribution")
    import yaml
    from hami_scheduler.extender import Extender
    from hami_scheduler.state import ClusterState

    from hami_hal.manager import Hal

    hal = Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"])
    devs = [{"id": f"910B3-DIE-{i}", "index": i, "count": 4, "devmem": 65536, "devcore": 100, "type": "Ascend910B3",
             "numa": i // 4, "health": True, "custominfo": {"NetworkID": i // 4}} for i in range(8)]
    cluster = ClusterState(hal.vendors())
    cluster.upsert_node({"metadata": {"name": "npu", "annotations": {
        "hami.io/node-register-Ascend910B3": json.dumps(devs)}}})
    ext = Extender(cluster, None, admit=hal.admit_request, pod_annotator=hal.pod_annotations)
    pod = yaml.safe_load((EXAMPLES / "ascend-vnpu-pod.yaml").read_text())
    pod["metadata"] |= {"namespace": "default", "uid": "u1"}
    out = ext.filter({"Pod": pod, "NodeNames": ["npu"]})
    assert out.node_names == ["npu"]
    anns = ext.filter_annotations(pod, out.allocation)
    (entry,) = anns["hami.io/Ascend910B3-devices-allocated"].rstrip(";").rstrip(":").split(":")
    uuid, word, mem, _cores = entry.split(",")
    assert (word, mem) == ("Ascend910B3", "16384") and uuid.startswith("910B3-DIE-")
    (runtime,) = json.loads(anns["huawei.com/Ascend910B3"])
    assert runtime == {"UUID": uuid, "memory": 16384, "temp": "vir05_1c_16g", "core": 5}
