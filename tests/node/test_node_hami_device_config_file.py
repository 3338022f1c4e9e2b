"""A HAMi v2.10 user's config works unchanged: `hami node --device-config` fed HAMi's device-config.yaml (its
`nvidia` section at HAMi's defaults, tests/data/hami-v2.10-device-config.yaml) plus a HAMi `nodeconfig` entry
written flat, as HAMi's device-plugin config.json has it. No key HAMi defines for NVIDIA is logged as ignored, the
node entry's keys reach the NVIDIA plugin over the section's, and the plugin's config is what HAMi would run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from node_agent_fixtures import NODE

from hami_hal.node.plugin_settings import check_plugin_config, node_settings

HAMI_FILE = Path(__file__).resolve().parents[1] / "data" / "hami-v2.10-device-config.yaml"
NO_FLAGS = {"deviceSplitCount": None, "deviceMemoryScaling": None, "deviceCoreScaling": None}
REGISTER = "hami.io/node-nvidia-register"
#: Every key HAMi v2.10 defines in the nvidia section (hami-compat.md §7.1) and in a nodeconfig entry.
HAMI_NVIDIA_KEYS = (
    "resourceCountName", "resourceMemoryName", "resourceMemoryPercentageName", "resourceCoreName",
    "resourcePriorityName", "overwriteEnv", "defaultMemory", "defaultCores", "defaultGPUNum",
    "preConfiguredDeviceMemory", "memoryFactor", "deviceSplitCount", "deviceMemoryScaling", "deviceCoreScaling",
    "enableNumaTopology", "gpuCorePolicy", "libCudaLogLevel", "runtimeClassName", "disableCoreLimit",
    "migProfileAllowlist",
)
HAMI_ENTRY_KEYS = (
    "operatingmode", "devicememoryscaling", "devicecorescaling", "devicesplitcount", "preconfigureddevicememory",
    "enablenumatopology", "migstrategy", "filterdevices", "enablegetpreferredallocation", "libcudaloglevel",
)


def _hami_file(folder: Path) -> Path:
    """The HAMi file with its node entry named after the test node."""
    path = folder / "device-config.yaml"
    path.write_text(HAMI_FILE.read_text().replace("name: gpu-node-1", f"name: {NODE}"))
    return path


def _entry_keys(hal) -> dict[str, dict[str, str]]:
    return {v.name: v.node_entry_keys for v in hal.vendors() if v.node_entry_keys}


def test_the_data_file_holds_every_hami_nvidia_key():
    import yaml

    raw = yaml.safe_load(HAMI_FILE.read_text())
    assert tuple(raw["nvidia"]) == HAMI_NVIDIA_KEYS
    assert set(raw["nodeconfig"][0]) == {"name", *HAMI_ENTRY_KEYS}


def test_no_hami_nvidia_key_is_ignored_and_the_config_is_hamis(hal, short_tmp):
    from hami_plugins_nvidia.config import parse_config

    s = node_settings(_hami_file(short_tmp), NODE, NO_FLAGS, entry_keys=_entry_keys(hal))
    s.drop_sections_except({"nvidia"})
    plugin_notes = check_plugin_config(hal, s, "nvidia")
    assert plugin_notes == []
    # the only notes: the sections of vendors not installed here (cambricon, HAMi's iluvatars list)
    assert len(s.notes) == 2 and all("cambricon" in n or "iluvatars" in n for n in s.notes), s.notes
    cfg = parse_config(s.config_for("nvidia"))
    assert (cfg.device_split_count, cfg.device_memory_scaling, cfg.device_core_scaling) == (4, 1.0, 1.0)
    assert cfg.operating_mode == "hami-core" and cfg.mig_strategy == "mixed"
    assert cfg.lib_cuda_log_level == 2 and cfg.enable_numa_topology  # the node entry over the section
    assert cfg.filter_uuids == () and cfg.filter_indexes == (1,)
    assert cfg.gpu_core_policy == "default" and not cfg.disable_core_limit and cfg.core_policy_env() is None
    assert cfg.pre_configured_device_memory == 0 and not cfg.overwrite_env and cfg.runtime_class_name == ""
    assert cfg.enable_get_preferred_allocation is True
    assert cfg.mig_profile_allowlist == () and len(cfg.mig_profile_allowlist_by_model) == 9
    assert cfg.allowed_mig_profiles("NVIDIA A100-SXM4-80GB") == ("1g.10gb", "2g.20gb", "3g.40gb", "7g.79gb")
    assert cfg.allowed_mig_profiles("NVIDIA H200 NVL") == ("1g.18gb", "2g.35gb", "3g.71gb", "7g.141gb")
    assert cfg.allowed_mig_profiles("Tesla T4") is None
    # where a complaint about a routed key points: the node entry's field, as written
    assert s.where("nvidia", "libCudaLogLevel") == f"device-config.yaml: nodeconfig[0] ({NODE}) libcudaloglevel"


def test_without_the_plugin_the_entry_keys_are_noted_not_lost(short_tmp):
    s = node_settings(_hami_file(short_tmp), NODE, NO_FLAGS, entry_keys={})
    (note,) = [n for n in s.notes if "nodeconfig[0]" in n]
    assert all(k in note for k in ("operatingmode", "migstrategy", "enablenumatopology"))


def test_a_bad_entry_key_names_the_entry(hal, short_tmp):
    import pytest

    from hami_hal.errors import InputError

    path = short_tmp / "config.json"
    path.write_text(json.dumps({"nodeconfig": [{"name": NODE, "operatingmode": "mps"}]}))
    s = node_settings(path, NODE, NO_FLAGS, entry_keys=_entry_keys(hal))
    with pytest.raises(InputError, match=rf"^config.json: nodeconfig\[0\] \({NODE}\) operatingmode: 'mps' is not "
                                         "supported"):
        check_plugin_config(hal, s, "nvidia")


def test_hami_node_runs_on_the_hami_file(api, short_tmp):
    """The agent as a process: no warning for a HAMi NVIDIA key, and the node entry's settings act (GPU index 1
    filtered out, split count 4 from the entry)."""
    res = subprocess.run([sys.executable, "-m", "hami_hal.cli", "node", "--once", "--node-name", NODE, "--backend",
                          "sim", "--api-server", api.url, "--plugin-dir", str(short_tmp / "dp"), "--device-config",
                          str(_hami_file(short_tmp))],
                         env={**os.environ, "HAMI_HAL_PLUGINS": "nvidia"}, cwd=short_tmp, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "section 'cambricon' names no installed plugin" in out  # the warnings do reach this output ...
    assert "not read by the NVIDIA plugin" not in out and "not applied" not in out and "Traceback" not in out
    assert not [line for line in out.splitlines() if "nodeconfig[0]" in line], out
    devices = json.loads(api.nodes[NODE]["metadata"]["annotations"][REGISTER])
    assert len(devices) == 1 and devices[0]["count"] == 4
    assert devices[0].get("index", 0) == 0  # HAMi's omitempty JSON: index 0 is left out
