"""The webhook refuses a pod that widens its own device access through a vendor's visible-devices variable.

The kubelet puts the pod spec's env after the device plugin's ``NVIDIA_VISIBLE_DEVICES=<uuids>`` and the runtime
keeps the last entry, so ``NVIDIA_VISIBLE_DEVICES=all`` in a spec would show every GPU of the node. Only the values
that show no device pass; the refusal is one line naming the container, the variable and the value.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from hami_scheduler.device_config import HIDE_DEVICES_ENV, VendorAdmission
from hami_scheduler.visible_devices_guard import check_pod_spec
from hami_scheduler.webhook import Mutator, WebhookServer
from sched_testing import NVIDIA

from hami_hal.models import ResourceFamily, VendorInfo

VAR = "NVIDIA_VISIBLE_DEVICES"
ASCEND = VendorInfo(name="ascend", display_name="Ascend", resources=[
    ResourceFamily(common_word="Ascend910B", count="huawei.com/Ascend910B", memory="huawei.com/Ascend910B-memory")])
ACME = VendorInfo(name="acme", display_name="Acme", resources=[
    ResourceFamily(common_word="ACME", count="acme.example/xpu")])
GPU = {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "1000"}


def review(spec: dict, op: str = "CREATE", sub: str | None = None) -> dict:
    req = {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": op,
           "namespace": "default", "object": {"metadata": {"name": "p"}, "spec": spec}}
    if sub:
        req["subResource"] = sub
    return req


def ctr(name: str = "main", limits: dict | None = None, env: list | None = None) -> dict:
    c: dict = {"name": name, "image": "cuda"}
    if limits is not None:
        c["resources"] = {"limits": limits}
    if env is not None:
        c["env"] = env
    return c


def denial(resp: dict) -> str:
    assert resp["allowed"] is False, resp
    assert resp["status"]["code"] == 400
    msg = resp["status"]["message"]
    assert "\n" not in msg
    return msg


@pytest.fixture
def mutator():
    return Mutator([NVIDIA])


@pytest.mark.parametrize("value", ["all", "GPU-7c1f6b5e-0000-4e5a-9d0f-000000000001", "0", "0,1", "1", "ALL",
                                   " none", "None", "$(OTHER)", "void,all", "MIG-1234"])
@pytest.mark.parametrize("limits", [GPU, None], ids=["gpu-pod", "no-gpu-pod"])
def test_a_value_that_shows_devices_is_refused_naming_container_variable_value(mutator, value, limits):
    spec = {"containers": [ctr("app", limits, env=[{"name": "A", "value": "1"}, {"name": VAR, "value": value}])]}
    msg = denial(mutator.review(review(spec)))
    assert msg.startswith("spec.containers[0].env[1]: container 'app' sets ")
    assert f"{VAR}={value!r}" in msg and "widens" in msg
    assert "'none', 'void', \"\"" in msg


@pytest.mark.parametrize("value", ["none", "void", "", None])
def test_values_that_show_no_device_pass_unchanged(mutator, value):
    e = {"name": VAR} if value is None else {"name": VAR, "value": value}
    spec = {"containers": [ctr("app", GPU, env=[e]), ctr("side", env=[e])]}
    resp = mutator.review(review(spec))
    assert resp["allowed"] is True
    patch = json.loads(base64.b64decode(resp["patch"]))
    assert all("/env" not in op["path"] for op in patch)  # the env is left as the pod wrote it


def test_init_containers_and_later_containers_are_checked(mutator):
    spec = {"initContainers": [ctr("fetch", env=[{"name": VAR, "value": "none"}]),
                               ctr("warm", env=[{"name": VAR, "value": "all"}])],
            "containers": [ctr("app", GPU)]}
    assert denial(mutator.review(review(spec))).startswith("spec.initContainers[1].env[0]: container 'warm' sets")
    spec = {"containers": [ctr("app", GPU), ctr("side", env=[{"name": VAR, "value": "none"},
                                                             {"name": VAR, "value": "2"}])]}
    assert denial(mutator.review(review(spec))).startswith("spec.containers[1].env[1]: container 'side' sets "
                                                           f"{VAR}='2'")


@pytest.mark.parametrize("source", [{"configMapKeyRef": {"name": "cm", "key": VAR}},
                                    {"secretKeyRef": {"name": "s", "key": "gpus"}},
                                    {"fieldRef": {"fieldPath": "metadata.annotations['gpus']"}}])
def test_value_from_is_refused_its_value_is_unknown_at_admission(mutator, source):
    spec = {"containers": [ctr("app", GPU, env=[{"name": VAR, "valueFrom": source}])]}
    msg = denial(mutator.review(review(spec)))
    assert msg.startswith(f"spec.containers[0].env[0]: container 'app' sets {VAR} from valueFrom")


def test_value_from_for_other_variables_passes(mutator):
    spec = {"containers": [ctr("app", GPU, env=[{"name": "CUDA_VISIBLE_DEVICES", "value": "all"},
                                                {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c",
                                                                                                "key": VAR}}}])]}
    assert mutator.review(review(spec))["allowed"] is True


# -- envFrom: the keys of a ConfigMap or Secret are not readable at admission and may change later ----------------

def with_env_from(c: dict, *sources: dict) -> dict:
    c["envFrom"] = list(sources)
    return c


CM = {"configMapRef": {"name": "gpus"}}


@pytest.mark.parametrize(("source", "shown"), [
    (CM, "ConfigMap 'gpus' without a prefix"),
    ({"secretRef": {"name": "tok", "optional": True}}, "Secret 'tok' without a prefix"),
    ({"configMapRef": {"name": "gpus"}, "prefix": ""}, "ConfigMap 'gpus' without a prefix"),
    ({"configMapRef": {"name": "gpus"}, "prefix": "NVIDIA_"}, "ConfigMap 'gpus' with prefix 'NVIDIA_'"),
    ({"secretRef": {"name": "s"}, "prefix": "NVIDIA_VISIBLE_DEVICES"}, "Secret 's' with prefix 'NVIDIA_VISIBLE_DEVICES'"),
])
def test_env_from_that_could_set_the_variable_in_a_gpu_container_is_refused(mutator, source, shown):
    spec = {"containers": [ctr("side"), with_env_from(ctr("app", GPU), {"configMapRef": {"name": "ok"}, "prefix": "APP_"},
                                                      source)]}
    for resp in (mutator.review(review(spec)), mutator.validate(review(spec))):
        msg = denial(resp)
        assert msg.startswith(f"spec.containers[1].envFrom[1]: container 'app' asks for nvidia.com/gpu and takes "
                              f"variables from {shown}, which could set {VAR}"), msg
        assert "prefix that NVIDIA_VISIBLE_DEVICES does not start with" in msg and len(msg) < 400


def test_env_from_in_init_containers_and_by_memory_alone_is_refused(mutator):
    spec = {"initContainers": [with_env_from(ctr("warm", {"nvidia.com/gpumem": "1000"}), CM)],
            "containers": [ctr("app", GPU)]}
    assert denial(mutator.review(review(spec))).startswith(
        "spec.initContainers[0].envFrom[0]: container 'warm' asks for nvidia.com/gpu")  # the default count joined
    assert denial(mutator.validate(review(spec))).startswith(
        "spec.initContainers[0].envFrom[0]: container 'warm' asks for nvidia.com/gpumem")  # as stored, unmutated


@pytest.mark.parametrize("source", [
    {"configMapRef": {"name": "cfg"}, "prefix": "APP_"},  # APP_NVIDIA_VISIBLE_DEVICES is another variable
    {"secretRef": {"name": "tok"}, "prefix": "NVIDIA_VISIBLE_DEVICES_"},
    {"configMapRef": {"name": "cfg"}, "prefix": "CUDA_"},
])
def test_env_from_with_a_prefix_that_cannot_make_the_name_passes(mutator, source):
    spec = {"containers": [with_env_from(ctr("app", GPU), source)]}
    assert mutator.review(review(spec))["allowed"] is True
    assert mutator.validate(review(spec))["allowed"] is True


def test_env_from_passes_where_env_names_the_variable_or_no_device_is_asked(mutator):
    """env wins over envFrom in the kubelet, and its value is checked; a container asking for no GPU gets no list
    from the plugin to replace (overwriteEnv pins it, or the image's ENV shows as much)."""
    pinned = {"containers": [with_env_from(ctr("app", GPU, env=[{"name": VAR, "value": "void"}]), CM)]}
    plain = {"containers": [ctr("app", GPU), with_env_from(ctr("web"), CM, {"secretRef": {"name": "tok"}})],
             "ephemeralContainers": [with_env_from(ctr("debug"), CM)]}
    for spec in (pinned, plain):
        assert mutator.review(review(spec))["allowed"] is True
        assert mutator.validate(review(spec))["allowed"] is True
    assert mutator.validate(review(plain, "UPDATE", "ephemeralcontainers"))["allowed"] is True


def test_ephemeral_container_update_checks_the_new_containers_not_the_immutable_ones(mutator):
    """kubectl debug on a pod created before the check (a GPU container taking envFrom): the pod's own containers
    cannot change any more, so only the ephemeral containers decide; a widening one is still refused."""
    old = {"containers": [with_env_from(ctr("app", GPU), CM)]}
    assert "envFrom[0]" in denial(mutator.validate(review(old)))  # refused, had it been created now
    debug = {**old, "ephemeralContainers": [with_env_from(ctr("dbg"), CM)]}
    assert mutator.validate(review(debug, "UPDATE", "ephemeralcontainers"))["allowed"] is True
    older = {"containers": [ctr("app", GPU, env=[{"name": VAR, "value": "all"}])], "ephemeralContainers": [ctr("dbg")]}
    assert mutator.validate(review(older, "UPDATE", "ephemeralcontainers"))["allowed"] is True  # refused before
    wide = {**old, "ephemeralContainers": [ctr("dbg", env=[{"name": VAR, "value": "all"}])]}
    assert denial(mutator.validate(review(wide, "UPDATE", "ephemeralcontainers"))).startswith(
        "spec.ephemeralContainers[0].env[0]: container 'dbg' sets")
    assert denial(mutator.validate(review({"ephemeralContainers": "x"}, "UPDATE", "ephemeralcontainers"))) == \
        "spec.ephemeralContainers: must be a list"


def test_env_from_in_a_pod_of_only_other_vendors_resources_is_checked_per_vendor():
    """Ascend's guard looks at Ascend requests: an NVIDIA-only container may take envFrom without a prefix."""
    m = Mutator([NVIDIA, ASCEND])
    npu = {"containers": [with_env_from(ctr("npu", {"huawei.com/Ascend910B": "1"}), CM)]}
    msg = denial(m.validate(review(npu)))
    assert "asks for huawei.com/Ascend910B" in msg and "could set ASCEND_VISIBLE_DEVICES" in msg
    gpu = {"containers": [with_env_from(ctr("app", GPU, env=[{"name": VAR, "value": "none"}]), CM)]}
    assert m.validate(review(gpu))["allowed"] is True


def test_overwrite_env_pins_containers_without_gpus_and_allow_setting_lets_env_from_through():
    m = Mutator([NVIDIA], admission=[VendorAdmission("nvidia", hide_env=HIDE_DEVICES_ENV["nvidia"])])
    spec = {"containers": [ctr("app", GPU), with_env_from(ctr("log"), CM)]}
    resp = m.review(review(spec))
    assert resp["allowed"] is True
    ops = json.loads(base64.b64decode(resp["patch"]))
    assert {"op": "add", "path": "/spec/containers/1/env", "value": [{"name": VAR, "value": "none"}]} in ops
    gpu = {"containers": [with_env_from(ctr("app", GPU), CM)]}
    assert "container 'app' asks for nvidia.com/gpu" in denial(m.review(review(gpu)))
    off = Mutator([NVIDIA], allow_visible_devices_env=True)
    assert off.review(review(gpu))["allowed"] is True and off.validate(review(gpu))["allowed"] is True


@pytest.mark.parametrize(("env_from", "line"), [
    ("x", "spec.containers[0].envFrom: must be a list"),
    (["x"], "spec.containers[0].envFrom[0]: must be an object"),
    ([{"configMapRef": {"name": "c"}, "prefix": 3}], "spec.containers[0].envFrom[0].prefix: 3 must be a string"),
])
def test_malformed_env_from_is_one_line(mutator, env_from, line):
    spec = {"containers": [ctr("app", GPU) | {"envFrom": env_from}]}
    assert denial(mutator.validate(review(spec))) == line


def test_odd_env_from_sources_are_named_and_bounded(mutator):
    for src, shown in (({"configMapRef": "x"}, "ConfigMap '?'"), ({"configMapRef": {"name": "a" * 500}}, "..."),
                       ({"fileRef": {"path": "/x"}}, "source 'fileRef'"), ({}, "source (none)")):
        msg = denial(mutator.validate(review({"containers": [with_env_from(ctr("app", GPU), src)]})))
        assert shown in msg and len(msg) < 500, msg
    msg = denial(mutator.validate(review({"containers": [with_env_from(ctr("c" * 5000, GPU), CM)]})))
    assert len(msg) < 500 and msg.count("c") < 100


def test_long_and_odd_values_are_bounded_in_the_answer(mutator):
    spec = {"containers": [ctr("app", env=[{"name": VAR, "value": "GPU-" + "a" * 5000}])]}
    msg = denial(mutator.review(review(spec)))
    assert len(msg) < 400 and msg.count("a") < 100
    spec = {"containers": [ctr("app", env=[{"name": VAR, "value": 7}])]}
    assert f"{VAR}=7," in denial(mutator.review(review(spec)))
    for bad, where in (({"containers": [ctr("app") | {"env": "x"}]}, "spec.containers[0].env: must be a list"),
                       ({"containers": [ctr("app", env=["x"])]}, "spec.containers[0].env[0]: must be an object"),
                       ({"ephemeralContainers": "x"}, "spec.ephemeralContainers: must be a list")):
        assert denial(mutator.review(review(bad))) == where


def test_pods_of_other_schedulers_are_checked_too(mutator):
    spec = {"schedulerName": "volcano", "containers": [ctr("app", env=[{"name": VAR, "value": "all"}])]}
    assert "container 'app' sets" in denial(mutator.review(review(spec)))


def test_overwrite_env_replaces_the_value_first_so_containers_without_gpus_pass():
    """HAMi's overwriteEnv: the webhook's own `none` replaces the container's value; the check sees the result. A
    container holding GPUs is not overwritten, so its widening value is still refused."""
    m = Mutator([NVIDIA], admission=[VendorAdmission("nvidia", hide_env=HIDE_DEVICES_ENV["nvidia"])])
    ok = {"containers": [ctr("app", GPU), ctr("log", env=[{"name": VAR, "value": "all"}])]}
    assert m.review(review(ok))["allowed"] is True
    bad = {"containers": [ctr("app", GPU, env=[{"name": VAR, "value": "all"}])]}
    assert denial(m.review(review(bad))).startswith("spec.containers[0].env[0]: container 'app' sets")


def test_the_variable_comes_from_the_table_per_installed_vendor():
    """Ascend's variable is guarded only where Ascend is a vendor; its only no-device value is the empty one.
    A vendor with no table entry guards nothing (the scheduler stays vendor-neutral: the table is data)."""
    asc = {"containers": [ctr("npu", env=[{"name": "ASCEND_VISIBLE_DEVICES", "value": "0-7"}])]}
    assert "ASCEND_VISIBLE_DEVICES='0-7'" in denial(Mutator([ASCEND]).review(review(asc)))
    assert Mutator([NVIDIA]).review(review(asc))["allowed"] is True
    none = {"containers": [ctr("npu", env=[{"name": "ASCEND_VISIBLE_DEVICES", "value": "none"}])]}
    assert "only to \"\"" in denial(Mutator([ASCEND]).review(review(none)))
    nv = {"containers": [ctr("app", env=[{"name": VAR, "value": "all"}])]}
    assert Mutator([ACME]).review(review(nv))["allowed"] is True
    assert Mutator([ACME]).guards == []


def test_allow_setting_turns_the_check_off():
    m = Mutator([NVIDIA], allow_visible_devices_env=True)
    spec = {"containers": [ctr("app", GPU, env=[{"name": VAR, "value": "all"}])]}
    assert m.review(review(spec))["allowed"] is True
    assert m.validate(review(spec))["allowed"] is True


def test_validate_route_checks_create_and_ephemeral_containers_only(mutator):
    bad_eph = {"containers": [ctr("app", GPU)],
               "ephemeralContainers": [ctr("debug", env=[{"name": VAR, "value": "all"}])]}
    msg = denial(mutator.validate(review(bad_eph, "UPDATE", "ephemeralcontainers")))
    assert msg.startswith("spec.ephemeralContainers[0].env[0]: container 'debug' sets")
    wide = {"containers": [ctr("app", env=[{"name": VAR, "value": "all"}])]}
    assert "container 'app'" in denial(mutator.validate(review(wide)))
    assert mutator.validate(review(wide, "UPDATE"))["allowed"] is True  # a pod's env cannot change after creation
    assert mutator.validate(review(wide, "UPDATE", "status"))["allowed"] is True
    assert mutator.validate(review(wide, "CREATE", "binding"))["allowed"] is True
    ok = {"containers": [ctr("app", GPU, env=[{"name": VAR, "value": "void"}])]}
    assert mutator.validate(review(ok)) == {"uid": "u1", "allowed": True}  # never a patch
    assert denial(mutator.validate({"uid": "u", "kind": {"kind": "Pod"}, "object": {"spec": 1}})) == \
        "object.spec: must be an object"
    assert denial(mutator.validate("x")) == "request: must be an object"


def test_check_pod_spec_without_guards_passes_everything():
    assert check_pod_spec({"containers": "not even a list"}, []) is None


def test_validate_over_http():
    srv = WebhookServer(Mutator([NVIDIA]), "127.0.0.1", 0, None, None).start()
    try:
        def post(spec: dict, path: str) -> dict:
            body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                               "request": review(spec)}).encode()
            req = urllib.request.Request(srv.url + path, data=body, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return json.loads(r.read())["response"]
            except urllib.error.HTTPError as e:
                raise AssertionError(e.read()) from None

        wide = {"containers": [ctr("app", GPU, env=[{"name": VAR, "value": "all"}])]}
        for path in ("/validate", "/webhook"):
            assert "container 'app' sets NVIDIA_VISIBLE_DEVICES='all'" in denial(post(wide, path))
        ok = post({"containers": [ctr("app", GPU)]}, "/validate")
        assert ok == {"uid": "u1", "allowed": True}
    finally:
        srv.stop()


def test_cli_names_the_setting():
    out = subprocess.run([sys.executable, "-m", "hami_scheduler.cli", "webhook", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--allow-visible-devices-env" in out.stdout


@pytest.mark.parametrize("name", [["NVIDIA_VISIBLE_DEVICES"], {"a": 1}, 3, None])
def test_an_env_entry_whose_name_is_no_string_is_not_a_crash(name):
    # an AdmissionReview posted straight to the webhook: a list as a name was a TypeError (HTTP 500)
    spec = {"containers": [ctr(env=[{"name": name, "value": "all"}])]}
    assert check_pod_spec(spec, [HIDE_DEVICES_ENV["nvidia"]]) is None
