"""charts/hami-hal: devicePlugin.pluginSettings reaches the node agent's ConfigMap as one section per vendor, the
agent's own parser and the NVIDIA plugin's check accept what the chart writes, the process census folder the
DaemonSet mounts follows nvidia.procCensusDir (none when it is ""), and the NVIDIA plugin's gpuHookPath follows
global.gpuHookPath (where the init container installs libvgpu.so)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from k8s_controlplane import REPO, bin_dir

from hami_hal.manager import Hal
from hami_hal.node.plugin_settings import check_plugin_config, node_settings

CHART = REPO / "charts" / "hami-hal"


@pytest.fixture(scope="module")
def helm():
    path = bin_dir() / "helm"
    if not path.is_file():
        pytest.skip(f"e2e: helm not built in {bin_dir()} (run `make k8s-bins`)")
    return str(path)


def _node_objects(helm: str, *sets: str) -> tuple[dict, dict]:
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run([helm, "template", "hami", str(CHART), "--namespace", "hami-system", "--kube-version",
                          "1.37.2", "--show-only", "templates/node/daemonset.yaml", *args],
                         capture_output=True, text=True, check=True)
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    return json.loads(cm["data"]["config.json"]), ds


def _census_mount(ds: dict) -> tuple[str | None, str | None]:
    spec = ds["spec"]["template"]["spec"]
    (agent,) = [c for c in spec["containers"] if c["name"] == "node-agent"]
    mount = next((m["mountPath"] for m in agent["volumeMounts"] if m["name"] == "proc-census"), None)
    host = next((v["hostPath"]["path"] for v in spec["volumes"] if v["name"] == "proc-census"), None)
    return mount, host


@pytest.mark.parametrize(("sets", "census"), [
    ((), "/run/hami-hal/proc-census"),
    (("devicePlugin.pluginSettings.nvidia.procCensusDir=/var/run/census",), "/var/run/census"),
    (("devicePlugin.pluginSettings.nvidia.procCensusDir=",), None),
    (("devicePlugin.pluginSettings=null",), "/run/hami-hal/proc-census"),  # the plugin's default, mounted
])
def test_chart_plugin_settings_reach_the_agent_config_and_the_census_mount(helm, monkeypatch, tmp_path, sets, census):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "nvidia")
    config, ds = _node_objects(helm, "devicePlugin.deviceSplitCount=4", *sets)
    assert _census_mount(ds) == (census, census)  # same path inside the agent as on the host
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    settings = node_settings(path, "gpu-node-1", {})
    assert settings.knobs["deviceSplitCount"] == 4
    hal = Hal()
    if "nvidia" not in {v.name for v in hal.vendors()}:
        pytest.skip("the nvidia plugin did not load")
    settings.drop_sections_except({"nvidia"})
    assert check_plugin_config(hal, settings, "nvidia") == []
    from hami_plugins_nvidia.config import parse_config

    want = None if sets == ("devicePlugin.pluginSettings=null",) else (census or "")
    nv = parse_config(settings.config_for("nvidia"))
    assert nv.proc_census_dir == want
    assert nv.hook_path == "/usr/local"  # global.gpuHookPath, where the init container puts libvgpu.so


def test_chart_hands_global_gpu_hook_path_to_the_nvidia_plugin(helm):
    config, ds = _node_objects(helm, "global.gpuHookPath=/opt/hook")
    assert config["nvidia"]["gpuHookPath"] == "/opt/hook"
    spec = ds["spec"]["template"]["spec"]
    assert next(v for v in spec["volumes"] if v["name"] == "hook")["hostPath"]["path"] == "/opt/hook"


def test_chart_writes_other_vendor_sections_and_keeps_the_knobs_on_top(helm):
    config, _ = _node_objects(helm, "devicePlugin.pluginSettings.metax.sgpuSlots=8",
                              "devicePlugin.nodeconfig[0].name=n1", "devicePlugin.nodeconfig[0].devicesplitcount=2")
    assert config["metax"] == {"sgpuSlots": 8}
    assert set(config) == {"deviceSplitCount", "deviceMemoryScaling", "deviceCoreScaling", "nodeconfig", "nvidia",
                           "metax"}
    assert config["nodeconfig"] == [{"name": "n1", "devicesplitcount": 2}]
    assert {k: config[k] for k in ("deviceSplitCount", "deviceMemoryScaling", "deviceCoreScaling")} == {
        "deviceSplitCount": 10, "deviceMemoryScaling": 1, "deviceCoreScaling": 1}


def test_chart_nodeconfig_with_hamis_flat_nvidia_keys_reaches_the_plugin(helm, monkeypatch, tmp_path):
    """A HAMi nodeconfig entry copied into devicePlugin.nodeconfig as HAMi writes it (flat NVIDIA keys) works."""
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "nvidia")
    entry = {"name": "gpu-node-1", "operatingmode": "hami-core", "migstrategy": "mixed", "enablenumatopology": True,
             "filterdevices": {"uuid": [], "index": [1]}, "libcudaloglevel": 3}
    out = subprocess.run([helm, "template", "hami", str(CHART), "--namespace", "hami-system", "--kube-version",
                          "1.37.2", "--show-only", "templates/node/daemonset.yaml", "--set-json",
                          f"devicePlugin.nodeconfig={json.dumps([entry])}",
                          "--set", "devicePlugin.pluginSettings.nvidia.gpuCorePolicy=force"],
                         capture_output=True, text=True, check=True)
    cm = next(d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "ConfigMap")
    path = tmp_path / "config.json"
    path.write_text(cm["data"]["config.json"])
    hal = Hal()
    if "nvidia" not in {v.name for v in hal.vendors()}:
        pytest.skip("the nvidia plugin did not load")
    settings = node_settings(path, "gpu-node-1", {}, entry_keys={v.name: v.node_entry_keys for v in hal.vendors()})
    settings.drop_sections_except({"nvidia"})
    assert check_plugin_config(hal, settings, "nvidia") == [] and settings.notes == []
    from hami_plugins_nvidia.config import parse_config

    nv = parse_config(settings.config_for("nvidia"))
    assert (nv.mig_strategy, nv.enable_numa_topology, nv.filter_indexes) == ("mixed", True, (1,))
    assert (nv.lib_cuda_log_level, nv.gpu_core_policy) == (3, "force")
