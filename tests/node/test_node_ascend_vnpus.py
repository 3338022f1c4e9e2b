"""`hami node --device-config` with HAMi's Ascend ``vnpus`` section on the simulated Ascend hardware: a changed
template sets the split count HAMi's register annotation carries, a chip HAMi's table lacks is registered under its
own resource family (never under another chip's), and a bad entry stops the agent with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from node_agent_fixtures import NODE

REGISTER_B3 = "hami.io/node-register-Ascend910B3"
REGISTER_X9 = "hami.io/node-register-Ascend910X9"
B3 = {"chipName": "910B3", "commonWord": "Ascend910B3", "resourceName": "huawei.com/Ascend910B3",
      "resourceMemoryName": "huawei.com/Ascend910B3-memory", "resourceCoreName": "huawei.com/Ascend910B3-core",
      "memoryAllocatable": 65536, "memoryCapacity": 65536, "memoryFactor": 1, "aiCore": 20, "aiCPU": 7,
      "runtimeClassName": "ascend", "overwriteEnv": True,
      "templates": [{"name": "vir10_3c_32g", "memory": 32768, "aiCore": 10, "aiCPU": 3}]}
CUSTOM = {"chipName": "910X9", "commonWord": "Ascend910X9", "memoryAllocatable": 61440, "memoryCapacity": 65536,
          "aiCore": 24, "aiCPU": 6, "templates": [{"name": "vir06_1c_15g", "memory": 15360, "aiCore": 6, "aiCPU": 1}]}
PROFILES = """\
apiVersion: hami-hal.io/v1alpha1
kind: DeviceProfile
metadata: {name: test-910x9, description: "a chip outside HAMi's table (test)"}
spec: {vendor: ascend, model: "910X9", memory_mib: 65536, compute_units: 24, vendor_data: {chips_per_npu: 1}}
---
apiVersion: hami-hal.io/v1alpha1
kind: NodeProfile
metadata: {name: test-910x9-node, description: "one custom chip beside two 910B3 (test)"}
spec:
  driver_version: "24.1.rc3"
  devices:
    - {profile: test-910x9, count: 1}
    - {profile: ascend-910b3, count: 2}
"""


def _node(api, folder: Path, vnpus: object) -> subprocess.CompletedProcess:
    cfg = folder / "device-config.yaml"
    cfg.write_text(yaml.safe_dump({"vnpus": vnpus}))
    prof = folder / "profiles.yaml"
    prof.write_text(PROFILES)
    return subprocess.run([sys.executable, "-m", "hami_hal.cli", "node", "--once", "--node-name", NODE, "--backend",
                           "sim", "--sim-node", "test-910x9-node", "--api-server", api.url, "--plugin-dir",
                           str(folder / "dp"), "--device-config", str(cfg)],
                          env={**os.environ, "HAMI_HAL_PLUGINS": "ascend", "HAMI_HAL_PROFILE_PATH": str(prof)},
                          cwd=folder, capture_output=True, text=True, timeout=60)


def test_hami_node_registers_the_chips_of_the_vnpus_section(api, short_tmp):
    res = _node(api, short_tmp, {"hamiVnpuCore": False, "configs": [B3, CUSTOM]})
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "Traceback" not in out and "'vnpus' names no installed plugin" not in out
    annotations = api.nodes[NODE]["metadata"]["annotations"]
    devices = json.loads(annotations[REGISTER_B3])
    # the changed template: HAMi's split count 65536 / 32768 = 2 (the built-in table's is 4)
    assert len(devices) == 2 and {d["count"] for d in devices} == {2}
    # the custom chip: a resource family of its own (its register key), never counted under another chip's
    assert [k for k in annotations if k.startswith("hami.io/node-register-")] == [REGISTER_B3, REGISTER_X9]
    (x9,) = json.loads(annotations[REGISTER_X9])
    assert (x9["type"], x9["count"], x9["devmem"]) == ("Ascend910X9", 4, 61440)  # 61440 // 15360 vNPUs
    assert "not offered" not in out
    # and the inventory annotation carries the family, where the scheduler learns it
    inv = json.loads(annotations["hami-hal.io/node-inventory"])
    (ascend,) = inv["vendors"]
    assert "huawei.com/Ascend910X9-memory" in {f["memory"] for f in ascend["resources"]}


def test_hami_node_stops_on_a_bad_vnpus_entry_with_one_line(api, short_tmp):
    res = _node(api, short_tmp, [dict(B3, memoryFactor=1024)])
    assert res.returncode != 0
    lines = [line for line in res.stderr.splitlines() if "memoryFactor" in line]
    assert len(lines) == 1 and "device-config.yaml: vnpus[0].memoryFactor: 1024 HAMi multiplies" in lines[0], \
        res.stderr
    assert "Traceback" not in res.stderr
    assert REGISTER_B3 not in api.nodes[NODE]["metadata"]["annotations"]  # nothing started, nothing published
