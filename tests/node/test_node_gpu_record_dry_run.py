"""The GPU record script's plumbing, on a simulated node with a stand-in worker: the Allocate answer
becomes the process's env, the exporter is scraped at the worker's peak, and the criteria are computed.
The record says it is a dry run."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "conformance" / "benchmarks" / "node_agent_gpu_record.py"


@pytest.fixture
def record_script():
    spec = importlib.util.spec_from_file_location("node_agent_gpu_record", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dry_run(record_script, tmp_path, monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "nvidia")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests"), str(ROOT / "scheduler" / "testing_support"),
                                                      os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "rec.json"
    code = record_script.main(["--backend", "sim", "--worker", str(Path(__file__).parent / "standin_worker.py"),
                               "--out", str(out)])
    rec = json.loads(out.read_text())
    assert code == 0, rec
    assert rec["dry_run"] and "DRY RUN" in out.with_suffix(".md").read_text()
    assert rec["allocate_env"]["CUDA_DEVICE_MEMORY_LIMIT_0"] == "4096m" and rec["allocate_env"]["CUDA_DEVICE_SM_LIMIT"] == "30"
    assert rec["memory"]["exporter_used_bytes"] == 4096 << 20 and rec["memory"]["bytes_over_limit"] == 0
    assert rec["compute"]["share_percent"] == 30
    assert all(rec["criteria"].values())


def test_host_process_env_maps_container_paths(record_script, agent, kubelet, api):
    from node_agent_fixtures import bound_pod

    assert kubelet.wait(lambda k: len(k.healthy("nvidia.com/gpu")) == 20)
    uuid = agent.inventory.devices[0].uuid
    bound_pod(api, "h", f"{uuid},NVIDIA,4096,30:;")
    (resp,) = kubelet.allocate("nvidia.com/gpu", [kubelet.healthy("nvidia.com/gpu")[:1]]).container_responses
    env = record_script.host_process_env(resp, {"PATH": "/bin"})
    folder = agent.state.path("0000-h", "main")
    assert env["CUDA_DEVICE_MEMORY_SHARED_CACHE"].startswith(str(folder) + "/")
    assert env["CUDA_VISIBLE_DEVICES"] == uuid and env["PATH"] == "/bin"
    assert env["LD_PRELOAD"].endswith(".so") and env["CUDA_DEVICE_MEMORY_LIMIT_0"] == "4096m"
