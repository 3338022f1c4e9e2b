"""Cross-package: HAMi's reference pod through the installed NVIDIA plugin (hami-compat.md §1, §2, §5.1).

Skipped when hami-plugins-nvidia is not installed; the core's own tests never need it.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

pytest.importorskip("hami_plugins_nvidia.plugin", exc_type=ImportError)

from hami_hal.manager import Hal  # noqa: E402
from hami_hal.requests import load_pod_file, parse_pod  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "gpu-pod.yaml"
cli_main = importlib.import_module("hami_hal.cli.main")


@pytest.fixture
def nvidia_vendors(monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "nvidia")
    hal = Hal()
    if "nvidia" not in {v.name for v in hal.vendors()}:
        pytest.skip("the nvidia plugin is installed but did not load")
    return hal.vendors()


def _limits(**limits) -> dict:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}


def test_reference_pod_request(nvidia_vendors):
    (ctr,) = parse_pod(load_pod_file(EXAMPLE), nvidia_vendors).containers
    (r,) = ctr.requests
    # HAMi: {Nums: 2, Type: "NVIDIA", Memreq: 10240, MemPercentagereq: 101 (unset), Coresreq: 30}
    assert (r.count, r.common_word, r.memory_mib, r.compute_percent) == (2, "NVIDIA", 10240, 30)


@pytest.mark.parametrize(("limits", "expected"), [
    ({"nvidia.com/gpu": 1}, (1, None, 100, 100)),  # webhook: exclusive memory, no cores -> 100 %
    ({"nvidia.com/gpumem": 3000}, (1, 3000, None, 0)),  # webhook: defaultGPUNum
    ({"nvidia.com/gpu": 1, "nvidia.com/gpumem-percentage": 50}, (1, None, 50, 0)),
    ({"nvidia.com/gpu": 1, "nvidia.com/gpumem-percentage": 101, "nvidia.com/gpucores": 20}, (1, None, 100, 20)),
])
def test_nvidia_derivation_rules(nvidia_vendors, limits, expected):
    (r,) = parse_pod(_limits(**limits), nvidia_vendors).containers[0].requests
    assert (r.count, r.memory_mib, r.memory_percent, r.compute_percent) == expected


def test_reference_pod_dry_run_matches_hami(monkeypatch, capsys):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "nvidia")
    monkeypatch.setattr(cli_main, "entry_points", lambda group: [])
    code = cli_main.main(["allocate", str(EXAMPLE), "--backend", "sim", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["fits"] and data["simulated"]
    value = data["annotations"]["hami.io/vgpu-devices-to-allocate"]
    assert re.fullmatch(r"(GPU-[^,:;]+),NVIDIA,10240,30:(GPU-[^,:;]+),NVIDIA,10240,30:;", value)
    assert data["annotations"]["hami.io/vgpu-devices-allocated"] == value
    env = data["edits"]["main"]["env"]
    uuids = env["NVIDIA_VISIBLE_DEVICES"].split(",")
    assert len(set(uuids)) == 2 and value.startswith(uuids[0])
    assert env["CUDA_DEVICE_MEMORY_LIMIT_0"] == env["CUDA_DEVICE_MEMORY_LIMIT_1"] == "10240m"
    assert env["CUDA_DEVICE_SM_LIMIT"] == "30"
