"""HAMi's device-plugin knobs for `hami node` (deviceSplitCount, deviceMemoryScaling, deviceCoreScaling): flags
and a config file reach the register annotation and the kubelet's replica IDs; bad values are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from node_agent_fixtures import NODE

from hami_hal.errors import InputError
from hami_hal.node.device_config import device_config, load_file
from hami_hal.node.families import families

HAMI = [sys.executable, "-m", "hami_hal.cli"]
REGISTER = "hami.io/node-nvidia-register"


def _once(api, short_tmp, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*HAMI, "node", "--once", "--node-name", NODE, "--backend", "sim", "--api-server", api.url,
                           "--plugin-dir", str(short_tmp / "dp"), *extra],
                          env={**os.environ, "HAMI_HAL_PLUGINS": "nvidia"}, cwd=short_tmp, capture_output=True,
                          text=True, timeout=60)


def _register(api) -> list[dict]:
    return json.loads(api.nodes[NODE]["metadata"]["annotations"][REGISTER])


def test_node_knob_flags_reach_the_register_annotation(api, short_tmp):
    assert _once(api, short_tmp).returncode == 0
    base = _register(api)
    assert {d["count"] for d in base} == {10}  # HAMi's default split count
    res = _once(api, short_tmp, "--device-split-count", "4", "--device-memory-scaling", "0.5",
                "--device-core-scaling", "2")
    assert res.returncode == 0, res.stderr
    scaled = _register(api)
    assert [d["count"] for d in scaled] == [4] * len(base)
    assert [d["devmem"] for d in scaled] == [int(d["devmem"] * 0.5) for d in base]
    assert [d["devcore"] for d in scaled] == [200] * len(base)


def test_node_config_file_per_node_entry_and_flag_override(api, short_tmp):
    cfg = short_tmp / "config.yaml"
    cfg.write_text(json.dumps({"deviceSplitCount": 7, "nodeconfig": [
        {"name": "other-node", "devicesplitcount": 2}, {"name": NODE, "devicesplitcount": 3}]}))
    assert load_file(cfg, NODE) == {"deviceSplitCount": 3}
    assert load_file(cfg, "elsewhere") == {"deviceSplitCount": 7}
    assert device_config(cfg, NODE, {"deviceSplitCount": 5, "deviceCoreScaling": None}) == {"deviceSplitCount": 5}
    res = _once(api, short_tmp, "--device-config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert {d["count"] for d in _register(api)} == {3}


def test_node_split_count_sets_the_kubelet_replicas(hal):
    inv = hal.discover("sim", node_name=NODE, config={"deviceSplitCount": 4})
    (fam,) = families(hal.vendors(), inv.devices)
    reps = fam.replicas()
    assert len(reps) == 4 * len(inv.devices)
    assert sorted(reps)[:4] == [f"{sorted(d.uuid for d in inv.devices)[0]}-{i}" for i in range(4)]


@pytest.mark.parametrize(("args", "named"), [
    (["--device-split-count", "0"], "--device-split-count: 0 must be between 1 and 1024"),
    (["--device-split-count", "5000"], "--device-split-count: 5000"),
    (["--device-memory-scaling", "0"], "--device-memory-scaling: 0.0 must be between 0.01 and 100"),
    (["--device-core-scaling", "1e9"], "--device-core-scaling: 1000000000.0"),
])
def test_node_bad_knob_flag_is_one_line_and_writes_nothing(api, short_tmp, args, named):
    res = _once(api, short_tmp, *args)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and named in res.stderr, res.stderr
    assert REGISTER not in api.nodes[NODE]["metadata"]["annotations"]


@pytest.mark.parametrize(("text", "named"), [
    ("deviceSplitCount: many\n", "config.yaml: deviceSplitCount: 'many' must be an integer 1..1024"),
    (f"nodeconfig:\n  - {{name: {NODE}, devicememoryscaling: -1}}\n",
     f"config.yaml: nodeconfig[0] ({NODE}) devicememoryscaling: -1"),
    ("nodeconfig: 3\n", "config.yaml: nodeconfig: 3 must be a list"),
    ("deviceSplitCount: [1\n", "is not valid YAML/JSON at line"),
    ("- 1\n- 2\n", "'list' must hold a mapping"),
    ("deviceSplitCount: true\n", "deviceSplitCount: True must be an integer"),
])
def test_node_bad_config_file_is_one_line(api, short_tmp, text, named):
    cfg = short_tmp / "config.yaml"
    cfg.write_text(text)
    with pytest.raises(InputError, match=None) as err:
        load_file(cfg, NODE)
    assert named in str(err.value) and "\n" not in str(err.value)
    res = _once(api, short_tmp, "--device-config", str(cfg))
    assert res.returncode == 2 and named in res.stderr and "Traceback" not in res.stderr
    assert REGISTER not in api.nodes[NODE]["metadata"]["annotations"]


def test_node_missing_or_huge_config_file(short_tmp):
    with pytest.raises(InputError, match="cannot be read"):
        load_file(short_tmp / "nope.yaml", NODE)
    big = short_tmp / "big.yaml"
    big.write_text("#" * ((1 << 20) + 1))
    with pytest.raises(InputError, match="larger than"):
        load_file(big, NODE)
