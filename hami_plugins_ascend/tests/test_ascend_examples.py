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
