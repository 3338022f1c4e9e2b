"""`hami allocate` on a simulated C500 node: an sGPU pod with a QoS policy, and a bad policy as one line."""

from __future__ import annotations

import json

from hami_hal.cli.main import main


def _allocate(tmp_path, monkeypatch, capsys, limits: dict, annotations: dict):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "metax")
    pod = tmp_path / "pod.json"
    pod.write_text(json.dumps({"kind": "Pod", "metadata": {"name": "sgpu", "annotations": annotations},
                               "spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": limits}}]}}))
    rc = main(["allocate", str(pod), "--json", "--backend", "sim", "--sim-node", "metax-8xc500"])
    return rc, capsys.readouterr()


def test_sgpu_pod_with_qos(tmp_path, monkeypatch, capsys):
    rc, out = _allocate(tmp_path, monkeypatch, capsys,
                        {"metax-tech.com/sgpu": 1, "metax-tech.com/vcore": 60, "metax-tech.com/vmemory": 4},
                        {"metax-tech.com/sgpu-qos-policy": "fixed-share"})
    anns = json.loads(out.out)["annotations"]
    assert rc == 0 and anns["hami.io/metax-sgpu-devices-allocated"].endswith(",Metax-SGPU,4096,60:;")
    assert json.loads(anns["metax-tech.com/gpu-devices-allocated"])[0][0]["vRam"] == 4096


def test_unknown_qos_is_one_line(tmp_path, monkeypatch, capsys):
    rc, out = _allocate(tmp_path, monkeypatch, capsys, {"metax-tech.com/sgpu": 1},
                        {"metax-tech.com/sgpu-qos-policy": "platinum"})
    assert rc != 0 and "Traceback" not in out.err
    assert "metax-tech.com/sgpu-qos-policy" in out.err + out.out and "platinum" in out.err + out.out
