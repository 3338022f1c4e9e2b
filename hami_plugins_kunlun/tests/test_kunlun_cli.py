"""`hami allocate` on a simulated P800 node, with the pods of HAMi's Kunlunxin vXPU guide."""

from __future__ import annotations

import json

import pytest

from hami_hal.cli.main import main


def _allocate(tmp_path, monkeypatch, capsys, limits: dict) -> tuple[int, dict | str]:
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "kunlun")
    pod = tmp_path / "pod.json"
    pod.write_text(json.dumps({"kind": "Pod", "metadata": {"name": "xpu"}, "spec": {"containers": [
        {"name": "c", "image": "x", "resources": {"limits": limits}}]}}))
    rc = main(["allocate", str(pod), "--json", "--backend", "sim", "--sim-node", "kunlun-8xp800"])
    out = capsys.readouterr()
    try:
        return rc, json.loads(out.out)
    except json.JSONDecodeError:
        return rc, out.out + out.err


@pytest.mark.parametrize("count, memory, fits", [(8, 24576, False), (6, 24576, True), (8, 49152, True)])
def test_guide_examples(tmp_path, monkeypatch, capsys, count, memory, fits):
    """HAMi's guide: vxpu 8 × 24576 is invalid (driver handles); 6 × 24576 and 8 × 49152 are valid."""
    rc, out = _allocate(tmp_path, monkeypatch, capsys,
                        {"kunlunxin.com/vxpu": count, "kunlunxin.com/vxpu-memory": memory})
    if fits:
        assert rc == 0 and out["fits"] is True
        assert out["annotations"]["hami.io/xpu-devices-allocated"].count(f",XPU,{memory},") == count
    else:  # never fits, even on an empty node: one line naming the field and the handle budget
        assert rc != 0 and isinstance(out, str) and out.count("\n") == 1
        assert 'limits["kunlunxin.com/vxpu"]: 8 can never fit' in out and "kunlun-xpu-handles: 32 of 24" in out


def test_whole_cards_write_device_idx(tmp_path, monkeypatch, capsys):
    rc, out = _allocate(tmp_path, monkeypatch, capsys, {"kunlunxin.com/xpu": 4})
    assert rc == 0 and out["annotations"]["BAIDU_COM_DEVICE_IDX"] == "0,1,2,3"
    assert "hami.io/xpu-devices-allocated" not in out["annotations"]
