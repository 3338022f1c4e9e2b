"""`hami allocate` on a simulated MLU370 node: a HAMi sMLU pod gets its DSMLU profile; a bad value one line."""

from __future__ import annotations

import json

from hami_hal.cli.main import main


def _allocate(tmp_path, monkeypatch, capsys, limits: dict):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "cambricon")
    pod = tmp_path / "pod.json"
    pod.write_text(json.dumps({"kind": "Pod", "metadata": {"name": "mlu"}, "spec": {"containers": [
        {"name": "c", "image": "x", "resources": {"limits": limits}}]}}))
    rc = main(["allocate", str(pod), "--json", "--backend", "sim", "--sim-node", "cambricon-4xmlu370-x8"])
    return rc, capsys.readouterr()


def test_smlu_pod(tmp_path, monkeypatch, capsys):
    rc, out = _allocate(tmp_path, monkeypatch, capsys, {"cambricon.com/vmlu": 1, "cambricon.com/mlu.smlu.vmemory": 20,
                                                        "cambricon.com/mlu.smlu.vcore": 10})
    anns = json.loads(out.out)["annotations"]
    assert rc == 0 and anns["CAMBRICON_DSMLU_PROFILE"] == "0_10_20" and anns["CAMBRICON_DSMLU_ASSIGNED"] == "false"
    assert anns["hami.io/cambricon-mlu-devices-allocated"].endswith(",MLU,5120,10:;")


def test_bad_vcore_is_one_line(tmp_path, monkeypatch, capsys):
    rc, out = _allocate(tmp_path, monkeypatch, capsys, {"cambricon.com/vmlu": 1, "cambricon.com/mlu.smlu.vcore": 130})
    assert rc != 0 and "Traceback" not in out.err
    assert 'limits["cambricon.com/mlu.smlu.vcore"]: 130 must be between 0 and 100' in out.err + out.out
