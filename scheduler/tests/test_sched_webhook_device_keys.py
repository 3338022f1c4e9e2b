"""HAMi's ``overwriteEnv`` and ``runtimeClassName`` in the admission webhook.

Every patch is applied to the pod with an RFC 6902 applier (strict: ``add`` into an array needs an index up to its
length or ``-``, ``replace`` needs the target to exist), and the tests check the resulting pod, so a patch that the
apiserver would refuse fails here too.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hami_scheduler.device_config import (
    HIDE_DEVICES_ENV,
    VendorAdmission,
    VisibleDevicesEnv,
    read_device_config,
)
from hami_scheduler.webhook import Mutator
from json_patch import apply_patch
from sched_testing import NVIDIA

from hami_hal.errors import InputError
from hami_hal.models import ResourceFamily, VendorInfo

HAMI_FILE = Path(__file__).resolve().parents[2] / "tests" / "data" / "hami-v2.10-device-config.yaml"
ACME = VendorInfo(name="acme", display_name="Acme", resources=[
    ResourceFamily(common_word="ACME", count="acme.example/xpu", memory="acme.example/xpu-mem")])
HIDE_NV = VendorAdmission("nvidia", hide_env=HIDE_DEVICES_ENV["nvidia"])


def review(spec: dict) -> dict:
    return {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
            "namespace": "default", "object": {"metadata": {"name": "p"}, "spec": spec}}


def mutate(m: Mutator, spec: dict) -> dict:
    """The pod spec after the webhook's patch (the patch applied to the whole pod, as the apiserver does)."""
    req = review(spec)
    resp = m.review(req)
    assert resp["allowed"] is True, resp
    ops = json.loads(base64.b64decode(resp["patch"])) if "patch" in resp else []
    return apply_patch(req["object"], ops)["spec"]


def ctr(name: str = "main", limits: dict | None = None, env: list | None = None, **extra) -> dict:
    c = {"name": name, "image": "cuda", **extra}
    if limits is not None:
        c["resources"] = {"limits": limits}
    if env is not None:
        c["env"] = env
    return c


def env_of(c: dict) -> dict[str, str]:
    """The environment the container runs with: the last entry of a name wins (kubelet's rule)."""
    out = {}
    for e in c.get("env") or []:
        out[e["name"]] = e.get("value", "<valueFrom>")
    return out


# -- overwriteEnv ---------------------------------------------------------------------------------------------------

def test_overwrite_env_on_a_pod_without_devices_adds_the_env_array():
    spec = mutate(Mutator([NVIDIA], admission=[HIDE_NV]), {"containers": [ctr()]})
    assert spec["containers"][0]["env"] == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"}]
    assert "schedulerName" not in spec  # a pod without managed resources keeps its scheduler


def test_overwrite_env_appends_to_an_existing_env_and_keeps_it():
    own = [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    spec = mutate(Mutator([NVIDIA], admission=[HIDE_NV]), {"containers": [ctr(env=own)]})
    assert spec["containers"][0]["env"] == [*own, {"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"}]


def test_overwrite_env_wins_over_the_containers_own_value():
    own = [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}, {"name": "X", "value": "x"},
           {"name": "NVIDIA_VISIBLE_DEVICES", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]
    spec = mutate(Mutator([NVIDIA], admission=[HIDE_NV]), {"containers": [ctr(env=own)]})
    env = spec["containers"][0]["env"]
    assert env == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"}, {"name": "X", "value": "x"},
                   {"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"}]
    # Already "none": nothing to patch.
    m = Mutator([NVIDIA], admission=[HIDE_NV])
    resp = m.review(review({"containers": [ctr(env=[{"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"}])]}))
    assert resp == {"uid": "u1", "allowed": True}


def test_overwrite_env_null_env_is_replaced_by_an_array():
    spec = mutate(Mutator([NVIDIA], admission=[HIDE_NV]), {"containers": [ctr(env=None) | {"env": None}]})
    assert spec["containers"][0]["env"] == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"}]


def test_gpu_containers_are_exempt_and_the_others_are_hidden_init_containers_too():
    m = Mutator([NVIDIA], admission=[HIDE_NV])
    spec = mutate(m, {
        "initContainers": [ctr("init-plain"), ctr("init-gpu", {"nvidia.com/gpumem": "1024"})],
        "containers": [ctr("gpu", {"nvidia.com/gpu": "1"}), ctr("sidecar", {"cpu": "1"}),
                       ctr("root", securityContext={"privileged": True})],
    })
    init, main = spec["initContainers"], spec["containers"]
    assert env_of(init[0]) == {"NVIDIA_VISIBLE_DEVICES": "none"}
    assert "env" not in init[1] and init[1]["resources"]["limits"]["nvidia.com/gpu"] == "1"  # default count added
    assert "env" not in main[0] and main[0]["resources"]["limits"]["nvidia.com/gpucores"] == "100"
    assert env_of(main[1]) == {"NVIDIA_VISIBLE_DEVICES": "none"}
    assert env_of(main[2]) == {"NVIDIA_VISIBLE_DEVICES": "none"}  # privileged without GPUs: allowed, hidden
    assert spec["schedulerName"] == "hami-scheduler"


def test_a_gpu_request_under_requests_only_also_exempts():
    m = Mutator([NVIDIA], admission=[HIDE_NV])
    spec = mutate(m, {"containers": [{"name": "a", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]})
    assert "env" not in spec["containers"][0]


def test_pods_of_another_scheduler_are_hidden_too():
    spec = mutate(Mutator([NVIDIA], admission=[HIDE_NV]), {"schedulerName": "volcano", "containers": [ctr()]})
    assert env_of(spec["containers"][0]) == {"NVIDIA_VISIBLE_DEVICES": "none"}
    assert spec["schedulerName"] == "volcano"


def test_two_vendors_hide_per_vendor_and_the_patch_sequence_stays_valid():
    acme = VendorAdmission("acme", hide_env=VisibleDevicesEnv("ACME_VISIBLE_DEVICES", "", "test vendor"))
    m = Mutator([NVIDIA, ACME], admission=[HIDE_NV, acme])
    spec = mutate(m, {"containers": [ctr("plain"), ctr("nv", {"nvidia.com/gpu": "1"}),
                                     ctr("xpu", {"acme.example/xpu": "1"}, env=[{"name": "K", "value": "v"}])]})
    plain, nv, xpu = spec["containers"]
    assert plain["env"] == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"},
                            {"name": "ACME_VISIBLE_DEVICES", "value": ""}]
    assert env_of(nv) == {"ACME_VISIBLE_DEVICES": ""}
    assert env_of(xpu) == {"K": "v", "NVIDIA_VISIBLE_DEVICES": "none"}


def test_off_by_default_nothing_changes_for_a_plain_pod():
    m = Mutator([NVIDIA], admission=[VendorAdmission("nvidia", runtime_class_name="nvidia")])
    assert m.review(review({"containers": [ctr()]})) == {"uid": "u1", "allowed": True}


@pytest.mark.parametrize("env, message", [
    ("nope", "spec.containers[0].env: must be a list"),
    (["nope"], "spec.containers[0].env[0]: must be an object"),
])
def test_a_malformed_env_is_denied_with_one_line(env, message):
    resp = Mutator([NVIDIA], admission=[HIDE_NV]).review(review({"containers": [ctr(env=env)]}))
    assert resp["allowed"] is False and resp["status"]["message"] == message and "patch" not in resp


# -- runtimeClassName -----------------------------------------------------------------------------------------------

def test_runtime_class_is_set_on_a_pod_that_asks_for_the_vendor():
    m = Mutator([NVIDIA], admission=[VendorAdmission("nvidia", runtime_class_name="nvidia")])
    assert mutate(m, {"containers": [ctr(limits={"nvidia.com/gpu": "1"})]})["runtimeClassName"] == "nvidia"
    # An init container alone is enough (HAMi mutates init containers too).
    spec = mutate(m, {"initContainers": [ctr(limits={"nvidia.com/gpucores": "10"})], "containers": [ctr()]})
    assert spec["runtimeClassName"] == "nvidia"
    assert "runtimeClassName" not in mutate(m, {"containers": [ctr(limits={"cpu": "1"})]})


def test_the_pods_own_runtime_class_is_kept():
    m = Mutator([NVIDIA], admission=[VendorAdmission("nvidia", runtime_class_name="nvidia")])
    spec = mutate(m, {"runtimeClassName": "kata", "containers": [ctr(limits={"nvidia.com/gpu": "1"})]})
    assert spec["runtimeClassName"] == "kata"


def test_two_vendors_with_different_runtime_classes_are_denied_the_same_is_set_once():
    nv = VendorAdmission("nvidia", runtime_class_name="nvidia")
    both = {"containers": [ctr("a", {"nvidia.com/gpu": "1"}), ctr("b", {"acme.example/xpu": "1"})]}
    resp = Mutator([NVIDIA, ACME], admission=[nv, VendorAdmission("acme", runtime_class_name="acme")]).review(
        review(both))
    assert resp["allowed"] is False
    assert resp["status"]["message"].startswith("spec.runtimeClassName: unset")
    assert "acme wants 'acme'" in resp["status"]["message"] and "nvidia wants 'nvidia'" in resp["status"]["message"]
    m = Mutator([NVIDIA, ACME], admission=[nv, VendorAdmission("acme", runtime_class_name="nvidia")])
    assert mutate(m, both)["runtimeClassName"] == "nvidia"
    assert mutate(m, {**both, "runtimeClassName": "own"})["runtimeClassName"] == "own"  # the pod's: no conflict


def test_everything_at_once_is_one_valid_patch():
    m = Mutator([NVIDIA], admission=[VendorAdmission("nvidia", "nvidia", HIDE_DEVICES_ENV["nvidia"])])
    spec = mutate(m, {"schedulerName": "default-scheduler", "containers": [
        ctr("gpu", {"nvidia.com/gpumem": "2048"}), ctr("log", env=[{"name": "NVIDIA_VISIBLE_DEVICES", "value": "0"}])]})
    assert spec["schedulerName"] == "hami-scheduler" and spec["runtimeClassName"] == "nvidia"
    assert spec["containers"][0]["resources"]["limits"] == {"nvidia.com/gpumem": "2048", "nvidia.com/gpu": "1"}
    assert "env" not in spec["containers"][0]
    assert spec["containers"][1]["env"] == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"}]


# -- the device-config file -----------------------------------------------------------------------------------------

def test_hami_v210_file_at_hamis_defaults_applies_nothing_extra():
    cfg = read_device_config([NVIDIA], str(HAMI_FILE))
    assert cfg.admission == []
    assert Mutator(cfg.vendors, admission=cfg.admission).review(review({"containers": [ctr()]}))["allowed"] is True


def test_file_keys_reach_the_mutator(tmp_path):
    f = tmp_path / "device-config.yaml"
    f.write_text(HAMI_FILE.read_text().replace("overwriteEnv: false", "overwriteEnv: true")
                 .replace('runtimeClassName: ""', "runtimeClassName: nvidia"))
    cfg = read_device_config([NVIDIA], str(f))
    assert cfg.admission == [VendorAdmission("nvidia", "nvidia", HIDE_DEVICES_ENV["nvidia"])]
    m = Mutator(cfg.vendors, admission=cfg.admission)
    spec = mutate(m, {"containers": [ctr("gpu", {"nvidia.com/gpu": "1"}), ctr("cpu")]})
    assert spec["runtimeClassName"] == "nvidia" and env_of(spec["containers"][1]) == {"NVIDIA_VISIBLE_DEVICES": "none"}
    f.write_text("nvidia:\n  overwriteEnv:\n  runtimeClassName:\n")  # empty keys: HAMi's zero values
    assert read_device_config([NVIDIA], str(f)).admission == []


@pytest.mark.parametrize("body, field, value", [
    ("nvidia:\n  overwriteEnv: 'true'\n", "nvidia.overwriteEnv", "'true'"),
    ("nvidia:\n  overwriteEnv: 1\n", "nvidia.overwriteEnv", "1"),
    ("nvidia:\n  runtimeClassName: Bad_Name\n", "nvidia.runtimeClassName", "'Bad_Name'"),
    ("nvidia:\n  runtimeClassName: [a]\n", "nvidia.runtimeClassName", "['a']"),
    (f"nvidia:\n  runtimeClassName: {'a' * 254}\n", "nvidia.runtimeClassName", "'aaaa"),
    ("nvidia: [1]\n", "nvidia", "'list'"),
    ("acme:\n  overwriteEnv: true\n", "acme.overwriteEnv", "True is not supported for acme"),
])
def test_bad_values_name_the_key_and_the_value(tmp_path, body, field, value):
    f = tmp_path / "device-config.yaml"
    f.write_text(body)
    with pytest.raises(InputError) as exc:
        read_device_config([NVIDIA, ACME], str(f))
    msg = str(exc.value)
    assert msg.startswith(f"{f}: {field}: {value}") and "\n" not in msg


def test_the_command_refuses_a_bad_file_with_one_line(tmp_path):
    f = tmp_path / "device-config.yaml"
    f.write_text("nvidia:\n  runtimeClassName: 'No Spaces'\n")
    vendors = tmp_path / "vendors.json"
    vendors.write_text(json.dumps([NVIDIA.model_dump(mode="json")]))
    out = subprocess.run([sys.executable, "-m", "hami_scheduler.cli", "webhook", "--bind", "127.0.0.1:0",
                          "--vendors", str(vendors), "--device-config", str(f)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "nvidia.runtimeClassName: 'No Spaces'" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


# -- a per-chip section: HAMi's Ascend ``vnpus`` --------------------------------------------------------------------

@pytest.fixture(scope="module")
def ascend():
    from hami_plugins_ascend.vendor import vendor_info

    return vendor_info()


VNPUS = """
vnpus:
  hamiVnpuCore: false
  configs:
    - {chipName: 910B3, commonWord: Ascend910B3, resourceName: huawei.com/Ascend910B3, runtimeClassName: ascend,
       overwriteEnv: true}
    - {chipName: 310P3, commonWord: Ascend310P, resourceName: huawei.com/Ascend310P}
"""


@pytest.mark.parametrize("body", [VNPUS, VNPUS.replace("  hamiVnpuCore: false\n  configs:\n", "")
                                  .replace("    - {", "  - {").replace("\n       overwriteEnv", "\n     overwriteEnv")])
def test_vnpus_entries_apply_per_chip_both_forms(tmp_path, ascend, body):
    f = tmp_path / "device-config.yaml"
    f.write_text(body)
    cfg = read_device_config([NVIDIA, ascend], str(f))
    m = Mutator(cfg.vendors, admission=cfg.admission)
    spec = mutate(m, {"containers": [ctr("npu", {"huawei.com/Ascend910B3": "1"}), ctr("plain"),
                                     ctr("gpu", {"nvidia.com/gpu": "1"})]})
    assert spec["runtimeClassName"] == "ascend"
    npu, plain, gpu = spec["containers"]
    assert "env" not in npu
    assert plain["env"] == [{"name": "ASCEND_VISIBLE_DEVICES", "value": ""}]
    assert gpu["env"] == [{"name": "ASCEND_VISIBLE_DEVICES", "value": ""}]
    # Another chip of the vendor: no runtime class of its own, and its NPU is not hidden by the 910B3 entry.
    spec = mutate(m, {"containers": [ctr("npu", {"huawei.com/Ascend310P": "1"})]})
    assert "runtimeClassName" not in spec and "env" not in spec["containers"][0]


def test_vnpus_and_nvidia_classes_in_one_pod_are_denied(tmp_path, ascend):
    f = tmp_path / "device-config.yaml"
    f.write_text("nvidia: {runtimeClassName: nvidia}\n" + VNPUS)
    cfg = read_device_config([NVIDIA, ascend], str(f))
    resp = Mutator(cfg.vendors, admission=cfg.admission).review(review({"containers": [
        ctr("npu", {"huawei.com/Ascend910B3": "1"}), ctr("gpu", {"nvidia.com/gpu": "1"})]}))
    assert resp["allowed"] is False
    assert "ascend Ascend910B3 wants 'ascend', nvidia wants 'nvidia'" in resp["status"]["message"]


@pytest.mark.parametrize("body, field, value", [
    ("vnpus:\n  configs:\n    - {commonWord: Ascend999, runtimeClassName: ascend}\n",
     "vnpus.configs[0].commonWord", "'Ascend999' names no ascend resource family"),
    ("vnpus:\n  - {commonWord: Ascend910B3}\n  - {commonWord: Ascend310P, runtimeClassName: Kata}\n",
     "vnpus[1].runtimeClassName", "'Kata'"),
    ("vnpus:\n  configs:\n    - {commonWord: Ascend310P, overwriteEnv: yes please}\n",
     "vnpus.configs[0].overwriteEnv", "'yes please'"),
    ("vnpus:\n  configs: 3\n", "vnpus.configs", "'int'"),
    ("vnpus:\n  - 3\n", "vnpus[0]", "'int'"),
    # a commonWord that is no string (was: TypeError, unhashable list), configs null or false (was: taken as none)
    ("vnpus:\n  - {commonWord: [Ascend310P], runtimeClassName: ascend}\n", "vnpus[0].commonWord",
     "['Ascend310P'] names no ascend resource family"),
    ("vnpus:\n  configs: false\n", "vnpus.configs", "'bool'"),
])
def test_vnpus_bad_values_name_the_entry(tmp_path, ascend, body, field, value):
    f = tmp_path / "device-config.yaml"
    f.write_text(body)
    with pytest.raises(InputError) as exc:
        read_device_config([NVIDIA, ascend], str(f))
    assert str(exc.value).startswith(f"{f}: {field}: {value}"), str(exc.value)
