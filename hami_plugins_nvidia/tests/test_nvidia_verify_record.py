"""The H100 record stays reproducible: the comparison re-runs from the recorded outputs with no mismatch,
and the simulated H100 profile says what the real H100 said."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "docs" / "results" / "2026-11-23-h100-nvidia-discovery.json"
XML = Path(__file__).parent / "data" / "h100-nvidia-smi-q.xml"


@pytest.fixture(scope="module")
def verify():
    spec = importlib.util.spec_from_file_location("nvidia_verify_script",
                                                  ROOT / "hami_plugins_nvidia" / "scripts" / "verify_nvidia.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_recorded_h100_run_recompares_without_mismatch(verify, tmp_path):
    report = json.loads(RECORD.read_text())
    verify.run_comparison(report, XML.read_text(), tmp_path)
    verdicts = {(r["gpu"], r["field"]): r["verdict"] for r in report["comparison"]}
    assert "MISMATCH" not in verdicts.values()
    assert verdicts[("GPU0", "NUMA node")] == "explained"
    assert verdicts[("GPU0", "MIG profiles (name, id, instances, SMs)")] == "match"
    assert (tmp_path / "comparison.md").read_text().count("| match |") == len(report["comparison"]) - 1


def test_smi_parsers(verify):
    system, (gpu,) = verify.smi_gpus(XML.read_text())
    assert system == {"driver_version": "580.159.04", "cuda_version": "13.0"}
    assert gpu["product_name"] == "NVIDIA H100 80GB HBM3" and gpu["memory_total"] == "81559 MiB"
    assert gpu["remap_failure"] == "No" and gpu["ecc_volatile_uncorrectable"] == "0"
    topo = verify.smi_topology("\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
                               "GPU0\t X \tNV18\t0-31\t0\t\tN/A\nGPU1\tNV18\t X \t0-31\t0\t\tN/A\n")
    assert topo[(0, 1)] == "NV18" and topo[(1, 0)] == "NV18"
    rows = verify.smi_lgip(json.loads(RECORD.read_text())["tools"]["nvidia-smi mig -lgip"])
    assert [(r["name"], r["id"], r["sms"]) for r in rows][-1] == ("7g.80gb", 0, 132)


def test_simulated_h100_matches_the_real_one(sim):
    real = json.loads(RECORD.read_text())["plugin"]["devices"][0]
    fake = sim("nvidia-1xh100").devices[0]
    assert (fake.model, fake.memory_mib, fake.compute_units) == (real["model"], real["memory_mib"],
                                                                 real["compute_units"])
    keys = ("name", "profileId", "memoryMB", "smCount", "instanceCount", "core", "placements")
    as_set = {tuple(json.dumps(p[k]) for k in keys) for p in real["attributes"]["mig_profiles"]}
    assert {tuple(json.dumps(p[k]) for k in keys) for p in fake.attributes["mig_profiles"]} == as_set
    assert fake.attributes["compute_capability"] == real["attributes"]["compute_capability"]
    assert fake.numa_node is None and real["numa_node"] is None
