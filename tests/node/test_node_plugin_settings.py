"""Plugin settings through the node agent: the per-vendor sections of `hami node --device-config` reach each
plugin's context.config (its own section only), are checked by the plugin before anything starts, and the NVIDIA
plugin's procCensusDir set there moves the process census (issue 18) on a simulated node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from node_agent_fixtures import NODE

from hami_hal.errors import InputError
from hami_hal.manager import Hal
from hami_hal.node.plugin_settings import check_plugin_config, node_settings

HAMI = [sys.executable, "-m", "hami_hal.cli"]
REGISTER = "hami.io/node-nvidia-register"
NO_FLAGS = {"deviceSplitCount": None, "deviceMemoryScaling": None, "deviceCoreScaling": None}


def _write(folder: Path, data: dict | str) -> Path:
    path = folder / "config.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _env(plugins: str = "nvidia") -> dict:
    return {**os.environ, "HAMI_HAL_PLUGINS": plugins}


def _published(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text() for p in folder.iterdir() if not p.name.startswith(".")}


# -- the hook ---------------------------------------------------------------------------------


def test_hook_hami_hal_check_config(hal):
    assert hal.check_config("nvidia", {"nvidia": {"procCensusDir": "/run/x"}}) == []
    with pytest.raises(InputError) as err:
        hal.check_config("nvidia", {"nvidia": {"procCensusDir": "run/x"}})
    assert err.value.field == "procCensusDir" and err.value.value == "run/x"
    with pytest.raises(InputError, match="operatingMode: 'fast' must be one of hami-core, mig, whole"):
        hal.check_config("nvidia", {"nvidia": {"operatingMode": "fast"}})
    # keys the plugin does not read are noted (a misspelt setting is not lost silently); HAMi's scheduler keys
    # of the same section (resource names...) are passed over
    (note,) = hal.check_config("nvidia", {"nvidia": {"procCensusDirr": "/x", "resourceCountName": "nvidia.com/gpu"}})
    assert note.startswith("nvidia: procCensusDirr not read by the NVIDIA plugin (ignored); it reads ")
    assert "procCensusDir" in note and "resourceCountName" not in note


def test_other_plugins_check_their_sections(monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "ascend,hygon,metax")
    hal = Hal()
    vendors = {v.name for v in hal.vendors()}
    if not {"ascend", "hygon", "metax"} <= vendors:
        pytest.skip(f"plugins not all loaded: {sorted(vendors)}")
    for vendor, bad, named in (
        ("ascend", {"npu_smi_timeout_s": 0}, "ascend.npu_smi_timeout_s: 0 must be a number of seconds"),
        ("ascend", {"vDeviceCount": 500}, "vDeviceCount: 500 must be an integer between 1 and 128"),
        ("hygon", {"hy_smi_timeout_s": "soon"}, "hygon.hy_smi_timeout_s: 'soon'"),
        ("hygon", {"vdev_mark_dir": "etc/vdev"}, "vdev_mark_dir: 'etc/vdev' must be an absolute path"),
        ("metax", {"sgpuSlots": 0}, "sgpuSlots: 0 must be an integer between 1 and 1024"),
    ):
        with pytest.raises(InputError, match=None) as err:
            hal.check_config(vendor, {vendor: bad})
        assert named in str(err.value)
    assert hal.check_config("metax", {"metax": {"sgpuSlots": 8, "resourceCountName": "metax-tech.com/gpu"}}) == []
    assert hal.check_config("hygon", {"hygon": {"hy_smi_timeout_s": 5}}) == []


def test_metax_sgpu_slots_from_its_section_reach_the_partition_model():
    from hami_plugins_metax.config import sgpu_slots

    assert sgpu_slots({"metax": {"sgpuSlots": 8}}) == 8
    assert sgpu_slots({"sgpu_slots": 4}) == 4  # the old top-level spelling still works
    assert sgpu_slots({}) is None
    with pytest.raises(InputError, match="sgpu_slots: 'many'"):
        sgpu_slots({"sgpu_slots": "many"})


# -- the core: sections, precedence, where an error points -------------------------------------


def test_sections_and_knob_precedence(short_tmp):
    cfg = _write(short_tmp, {
        "deviceSplitCount": 8, "deviceCoreScaling": 2,
        "nvidia": {"procCensusDir": "/run/a", "deviceSplitCount": 4, "device_memory_scaling": 0.5},
        "ascend": {"npu_smi_timeout_s": 9},
        "nodeconfig": [{"name": "other", "nvidia": {"procCensusDir": "/run/other"}},
                       {"name": NODE, "devicecorescaling": 3, "nvidia": {"operatingMode": "whole"}}]})
    s = node_settings(cfg, NODE, NO_FLAGS)
    assert s.knobs == {"deviceSplitCount": 8, "deviceCoreScaling": 3.0}  # top < node entry
    # the nvidia section: the node entry's keys over the file's, every spelling of a knob taken out ...
    assert s.sections["nvidia"] == {"procCensusDir": "/run/a", "operatingMode": "whole"}
    # ... and put at the top of the nvidia plugin's config, resolved: its section's over the top level's, the node
    # entry's over those
    assert s.config_for("nvidia") == {"deviceSplitCount": 4, "deviceMemoryScaling": 0.5, "deviceCoreScaling": 3.0,
                                      "nvidia": s.sections["nvidia"]}
    assert s.config_for("hygon") == s.knobs  # no section: the knobs only, never another vendor's section
    assert s.config_for("ascend") == {**s.knobs, "ascend": {"npu_smi_timeout_s": 9}}
    # a flag beats every file value, in the sections too
    s = node_settings(cfg, NODE, {**NO_FLAGS, "deviceSplitCount": 2})
    assert s.knobs["deviceSplitCount"] == 2 and s.config_for("nvidia")["deviceSplitCount"] == 2
    assert node_settings(cfg, "other", NO_FLAGS).sections["nvidia"]["procCensusDir"] == "/run/other"


def test_the_nvidia_plugin_reads_the_resolved_knobs_of_its_section(hal, short_tmp):
    from hami_plugins_nvidia.config import parse_config

    cfg = _write(short_tmp, {"deviceSplitCount": 8, "nvidia": {"device_split_count": 4}})
    s = node_settings(cfg, NODE, NO_FLAGS)
    assert parse_config(s.config_for("nvidia")).device_split_count == 4
    s = node_settings(cfg, NODE, {**NO_FLAGS, "deviceSplitCount": 6})
    assert parse_config(s.config_for("nvidia")).device_split_count == 6


def test_each_plugin_context_holds_only_its_own_section(monkeypatch):
    monkeypatch.setenv("HAMI_HAL_PLUGINS", "nvidia,ascend")
    hal = Hal()
    if {v.name for v in hal.vendors()} != {"nvidia", "ascend"}:
        pytest.skip("nvidia and ascend plugins not both loaded")
    inv = hal.discover("sim", node_name=NODE, config={"deviceSplitCount": 5},  # both plugins' default nodes
                       vendor_configs={"nvidia": {"deviceSplitCount": 5, "nvidia": {"procCensusDir": ""}},
                                       "ascend": {"deviceSplitCount": 5, "ascend": {"npu_smi_timeout_s": 9}}})
    ctx = inv.contexts()
    assert ctx["nvidia"].config == {"deviceSplitCount": 5, "nvidia": {"procCensusDir": ""}}
    assert ctx["ascend"].config == {"deviceSplitCount": 5, "ascend": {"npu_smi_timeout_s": 9}}


@pytest.mark.parametrize(("data", "named"), [
    ({"nvidia": {"procCensusDir": "rel/dir"}},
     "config.json: nvidia.procCensusDir: 'rel/dir' must be an absolute path of at most 255 characters without '..'"),
    ({"nodeconfig": [{"name": NODE, "nvidia": {"procCensusDir": "/a/../b"}}]},
     f"config.json: nodeconfig[0] ({NODE}) nvidia.procCensusDir: '/a/../b' must be an absolute path"),
    ({"nvidia": {"libCudaLogLevel": 9}}, "config.json: nvidia.libCudaLogLevel: 9 must be an integer 0..4"),
    ({"nvidia": {"deviceSplitCount": 0}}, "config.json: nvidia.deviceSplitCount: 0 must be between 1 and 1024"),
    ({"nvidia": ["procCensusDir"]}, "config.json: nvidia: '[...]' must be a mapping of the nvidia plugin's settings"),
    ({"procCensusDir": "/run/x"}, "config.json: 'procCensusDir': '/run/x' is not a setting of the node agent's "
                                  "config: the top level holds deviceSplitCount"),
    ({"nvidia": {f"k{i}": i for i in range(300)}}, "config.json: nvidia: '300 keys' is too large a section"),
])
def test_bad_plugin_setting_is_one_line_naming_where_it_was_written(hal, short_tmp, data, named):
    def check() -> None:
        s = node_settings(_write(short_tmp, data), NODE, NO_FLAGS)
        s.drop_sections_except({"nvidia"})
        check_plugin_config(hal, s, "nvidia")

    with pytest.raises(InputError) as err:
        check()
    assert str(err.value).startswith(named) and "\n" not in str(err.value)


def test_sections_of_vendors_not_installed_are_ignored_with_a_note(short_tmp):
    s = node_settings(_write(short_tmp, {"nvidia": {}, "cambricon": {"x": 1}, "iluvatars": [{"chipName": "MR-V100"}],
                                         "nodeconfig": [{"name": NODE, "operatingmode": "mig",
                                                         "filterdevices": {"uuid": []}}]}), NODE, NO_FLAGS)
    s.drop_sections_except({"nvidia"})
    assert set(s.sections) == {"nvidia"}
    assert "--device-config: section 'cambricon' names no installed plugin (installed: nvidia): ignored" in s.notes
    assert "--device-config: section 'filterdevices' names no installed plugin (installed: nvidia): ignored" in s.notes
    assert any(n.startswith("--device-config config.json: iluvatars: a list") for n in s.notes)
    assert any(n.startswith(f"--device-config config.json: nodeconfig[0] ({NODE}): 'operatingmode' ignored")
               for n in s.notes)


# -- the agent as a process ----------------------------------------------------------------------


def test_hami_node_writes_the_census_where_the_config_file_says(api, kubelet, short_tmp):
    """The acceptance test: `hami node` on a simulated node (where the census is off by default) with
    `nvidia: {procCensusDir: ...}` in its config file publishes one census file per GPU there."""
    census = short_tmp / "census"
    cfg = _write(short_tmp, {"deviceSplitCount": 4, "nvidia": {"procCensusDir": str(census)},
                             "cambricon": {"anything": 1}})
    proc = subprocess.Popen(
        [*HAMI, "node", "--node-name", NODE, "--backend", "sim", "--api-server", api.url, "--plugin-dir",
         str(kubelet.folder), "--state-root", str(short_tmp / "state"), "--metrics-port", "0",
         "--device-config", str(cfg)], env=_env(), cwd=short_tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        assert kubelet.wait(lambda k: len(k.healthy("nvidia.com/gpu")) == 8, timeout=60)  # 2 GPUs x split 4
        uuids = {rid.rsplit("-", 1)[0] for rid in kubelet.healthy("nvidia.com/gpu")}  # replica IDs <uuid>-<i>
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and set(_published(census)) != uuids:
            time.sleep(0.05)
        files = _published(census)
        assert set(files) == uuids and len(uuids) == 2
        assert all(text.startswith(f"hami-proc-census 1 {uuid} ") for uuid, text in files.items())
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "section 'cambricon' names no installed plugin (installed: nvidia): ignored" in out
    assert "plugin settings from --device-config: nvidia: procCensusDir" in out and "Traceback" not in out


def test_without_the_setting_a_simulated_node_has_no_census(api, short_tmp):
    res = subprocess.run([*HAMI, "node", "--once", "--node-name", NODE, "--backend", "sim", "--api-server", api.url,
                          "--plugin-dir", str(short_tmp / "dp"), "--device-config",
                          str(_write(short_tmp, {"nvidia": {}}))],
                         env=_env(), cwd=short_tmp, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert REGISTER in api.nodes[NODE]["metadata"]["annotations"]


@pytest.mark.parametrize(("data", "named"), [
    ({"nvidia": {"procCensusDir": "relative"}}, "config.json: nvidia.procCensusDir: 'relative' must be an absolute"),
    ({"nodeconfig": [{"name": NODE, "nvidia": {"operatingMode": 3}}]},
     f"config.json: nodeconfig[0] ({NODE}) nvidia.operatingMode: 3 must be one of"),
    ({"nvidia": 7}, "config.json: 'nvidia': 7 is not a setting of the node agent's config"),
    # HAMi's keys: a flat nodeconfig entry key, a part of a structured setting
    ({"nodeconfig": [{"name": NODE, "operatingmode": "mps"}]},
     f"config.json: nodeconfig[0] ({NODE}) operatingmode: 'mps' is not supported"),
    ({"nodeconfig": [{"name": NODE, "filterdevices": {"index": [-1]}}]},
     f"config.json: nodeconfig[0] ({NODE}) filterdevices.index: -1 must be a GPU index"),
    ({"nvidia": {"migProfileAllowlist": [{"models": ["A30"], "profiles": ["3g"]}]}},
     "config.json: nvidia.migProfileAllowlist[0].profiles: '3g' is not one of MIG profile names"),
])
def test_hami_node_refuses_a_bad_plugin_setting_and_starts_nothing(api, kubelet, short_tmp, data, named):
    census = short_tmp / "census"
    res = subprocess.run([*HAMI, "node", "--node-name", NODE, "--backend", "sim", "--api-server", api.url,
                          "--plugin-dir", str(kubelet.folder), "--state-root", str(short_tmp / "state"),
                          "--metrics-port", "0", "--device-config", str(_write(short_tmp, data))],
                         env=_env(), cwd=short_tmp, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and named in res.stderr, res.stderr
    assert REGISTER not in api.nodes[NODE]["metadata"]["annotations"]  # nothing written to the node
    assert not [p for p in kubelet.folder.iterdir() if p.name.startswith("hami-hal-")]  # no plugin socket
    assert kubelet.registrations == []
    assert not census.exists() and not (short_tmp / "state").exists()


def test_names_from_the_file_stay_on_one_log_line(short_tmp):
    from hami_hal.node.plugin_settings import summary

    s = node_settings(_write(short_tmp, {"nvidia": {"a\nFAKE LOG LINE": 1, "procCensusDir": ""},
                                         "x\ny": []}), NODE, NO_FLAGS)
    s.drop_sections_except({"nvidia"})
    assert "\n" not in summary(s) and "procCensusDir" in summary(s) and "'a\\nFAKE LOG LINE'" in summary(s)
    assert all("\n" not in n for n in s.notes) and any("'x\\ny'" in n for n in s.notes)


def test_a_plugin_check_that_crashes_is_one_line(hal, short_tmp, monkeypatch):
    from hami_hal.errors import HalError

    def broken(vendor, config):
        raise KeyError("boom")

    monkeypatch.setattr(hal, "check_config", broken)
    with pytest.raises(HalError, match="^plugin nvidia: its settings check failed: KeyError: 'boom'$"):
        check_plugin_config(hal, node_settings(None, NODE, NO_FLAGS), "nvidia")


def test_a_knob_in_the_vendor_section_reaches_the_register_annotation(api, short_tmp):
    """HAMi's device-config.yaml writes deviceSplitCount under nvidia:, the agent honours it there (over the top
    level) and a flag still wins."""
    cfg = _write(short_tmp, {"deviceSplitCount": 7, "nvidia": {"deviceSplitCount": 3}})

    def counts(*flags: str) -> set[int]:
        res = subprocess.run([*HAMI, "node", "--once", "--node-name", NODE, "--backend", "sim", "--api-server",
                              api.url, "--plugin-dir", str(short_tmp / "dp"), "--device-config", str(cfg), *flags],
                             env=_env(), cwd=short_tmp, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return {d["count"] for d in json.loads(api.nodes[NODE]["metadata"]["annotations"][REGISTER])}

    assert counts() == {3}
    assert counts("--device-split-count", "5") == {5}
