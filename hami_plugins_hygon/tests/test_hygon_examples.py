"""HAMi's documented Hygon example pod (legacy dcu* names) and the hcu* one run through ``hami allocate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hami_hal.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def _only_hygon(monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "hygon")


@pytest.mark.parametrize("pod, word, mem, cores", [
    ("hygon-vdcu-pod.yaml", "DCU", 2000, 15),
    ("hygon-hcu-pod.yaml", "HCU", 8192, 25),
])
def test_example_pod_allocates(capsys, pod, word, mem, cores):
    rc = main(["allocate", str(EXAMPLES / pod), "--backend", "sim", "--sim-node", "hygon-8xk100-ai", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    (s,) = [s for c in out["allocation"]["containers"] for s in c["slices"]]
    assert (s["common_word"], s["memory_mib"], s["compute_percent"]) == (word, mem, cores)
    key = f"hami.io/{word.lower()}-devices-allocated"
    assert out["annotations"][key] == f"{s['uuid']},{word},{mem},{cores}:;"
