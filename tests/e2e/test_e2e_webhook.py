"""The mutating webhook registered in the real apiserver (MutatingWebhookConfiguration, TLS with a CA bundle)
and exercised through it: the stored pod is the mutated one, an invalid pod is refused with one line naming
the field, a pod without managed resources is untouched, and a mutated pod goes on to be scheduled; with HAMi's
overwriteEnv / runtimeClassName in the device config, the apiserver applies and stores the env and class patches."""

from __future__ import annotations

import base64
import json
import ssl
import sys
import time
import urllib.request

import pytest
from k8s_controlplane import make_cert
from k8s_stack import gpu_pod
from kubernetes import client
from kubernetes.client.rest import ApiException

from hami_hal.testing.ports import wait_log_port


def start_webhook(stack, device_config: str | None = None, installed: bool = False) -> tuple[str, int]:
    """``installed``: the installed plugins' vendors and admission (the chart's way), not ``--vendors`` data."""
    cert, key = make_cert(stack.cp.pki, f"webhook-{stack.ns}"[:60], "IP:127.0.0.1")
    extra = ["--device-config", device_config] if device_config else []
    extra += [] if installed else ["--vendors", str(stack.vendors)]
    proc = stack.cp.spawn(f"{stack.ns}-webhook", [  # port 0: the banner says which port it got (no race)
        sys.executable, "-m", "hami_scheduler.cli", "webhook", "--bind", "127.0.0.1:0",
        "--tls-cert-file", str(cert), "--tls-private-key-file", str(key), *extra])
    stack.procs.append(proc)
    port = wait_log_port(proc.log, proc.alive, timeout=30)
    ctx = ssl.create_default_context(cafile=str(stack.cp.pki / "ca.crt"))
    end = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=2):
                break
        except OSError:
            if time.monotonic() > end or not proc.alive():
                raise RuntimeError(f"webhook not serving:\n{proc.tail()}") from None
            time.sleep(0.2)
    return f"https://127.0.0.1:{port}/webhook", port


def register(stack, url: str) -> str:
    name = f"{stack.ns}-hami-webhook"
    ca = (stack.cp.pki / "ca.crt").read_bytes()
    body = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "vgpu.hami.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "reinvocationPolicy": "Never", "timeoutSeconds": 10,
            "clientConfig": {"url": url, "caBundle": base64.b64encode(ca).decode()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": stack.ns}},
        }],
    }
    adm = client.AdmissionregistrationV1Api(stack.api)
    adm.create_mutating_webhook_configuration(body)
    stack.cleanups.append(lambda: adm.delete_mutating_webhook_configuration(name))
    return name


def stored(stack, name: str) -> dict:
    return json.loads(stack.core.read_namespaced_pod(name, stack.ns, _preload_content=False).data)


def test_webhook_through_the_apiserver(stack, deadline):
    url, _ = start_webhook(stack)
    register(stack, url)

    def active():  # the apiserver picks the configuration up from its informer
        pod = gpu_pod(f"warm{time.monotonic_ns() % 10**6}", mem=None, cores=None, scheduler=None)
        out = stack.core.create_namespaced_pod(stack.ns, pod, dry_run="All")
        return out.spec.scheduler_name == "hami-scheduler"

    deadline(active, 30, "the webhook configuration in effect")

    stack.create(gpu_pod("whole", mem=None, cores=None, scheduler=None))
    pod = stored(stack, "whole")
    assert pod["spec"]["schedulerName"] == "hami-scheduler"
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpucores"] == "100"  # HAMi PR #1354

    memonly = gpu_pod("memonly", mem=2048, cores=None, scheduler=None)
    del memonly["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    stack.create(memonly)  # memory alone: count 1 is added (HAMi defaultGPUNum); not exclusive: no cores
    limits = stored(stack, "memonly")["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"nvidia.com/gpu": "1", "nvidia.com/gpumem": "2048"}

    custom = gpu_pod("custom", scheduler="volcano")
    stack.create(custom)
    assert stored(stack, "custom")["spec"]["schedulerName"] == "volcano"

    plain = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    stack.create(plain)
    assert stored(stack, "plain")["spec"]["schedulerName"] == "default-scheduler"

    invalid = gpu_pod("invalid", mem=None, cores=None, scheduler=None)
    invalid["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpumem-percentage"] = "150"
    with pytest.raises(ApiException) as err:
        stack.create(invalid)
    assert err.value.status == 400
    message = json.loads(err.value.body)["message"]
    assert 'spec.containers[0].resources.limits["nvidia.com/gpumem-percentage"]: 150 must be between 0 and 100' \
        in message, message

    privileged = gpu_pod("priv", scheduler=None)
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(ApiException) as err:
        stack.create(privileged)
    assert "spec.containers[0].securityContext.privileged" in json.loads(err.value.body)["message"]

    # the mutated pod goes on through kube-scheduler and the extender
    stack.add_nodes(1)
    _, port = stack.start_extender()
    stack.start_scheduler(port)
    deadline(lambda: stored(stack, "whole")["status"].get("phase") == "Running", 30, "the mutated pod running")
    assert stored(stack, "whole")["metadata"]["annotations"]["hami.io/vgpu-devices-allocated"].endswith(",100:;")


def test_overwrite_env_and_runtime_class_through_the_apiserver(stack, deadline):
    """HAMi's overwriteEnv / runtimeClassName: the apiserver applies the webhook's JSONPatch (RFC 6902) and stores
    the result, so an invalid patch (an add past the end of env, a replace of a missing entry) would fail here."""
    rc, other = f"{stack.ns}-nvidia"[:63], f"{stack.ns}-kata"[:63]
    node_api = client.NodeV1Api(stack.api)
    for name in (rc, other):
        node_api.create_runtime_class({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                       "metadata": {"name": name}, "handler": "runc"})
        stack.cleanups.append(lambda name=name: node_api.delete_runtime_class(name))
    cfg = stack.work / "device-config.yaml"
    cfg.write_text(f"nvidia:\n  overwriteEnv: true\n  runtimeClassName: {rc}\n")
    url, _ = start_webhook(stack, str(cfg))
    register(stack, url)

    def active():
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"warm{time.monotonic_ns() % 10**6}"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        out = stack.core.create_namespaced_pod(stack.ns, pod, dry_run="All")
        return any(e.name == "NVIDIA_VISIBLE_DEVICES" for e in out.spec.containers[0].env or [])

    deadline(active, 30, "the webhook configuration in effect")

    pod = gpu_pod("mixed", scheduler=None)
    pod["spec"]["initContainers"] = [{"name": "init", "image": "busybox", "env": [{"name": "A", "value": "1"}]}]
    pod["spec"]["containers"].append({"name": "log", "image": "busybox",
                                      "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                                              {"name": "B", "value": "2"}]})
    stack.create(pod)
    spec = stored(stack, "mixed")["spec"]
    assert spec["runtimeClassName"] == rc and spec["schedulerName"] == "hami-scheduler"
    assert "env" not in spec["containers"][0]  # the GPU container: left alone
    assert spec["containers"][1]["env"] == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"},
                                            {"name": "B", "value": "2"}]
    assert spec["initContainers"][0]["env"] == [{"name": "A", "value": "1"},
                                                {"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"}]

    plain = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    stack.create(plain)
    spec = stored(stack, "plain")["spec"]
    assert spec["containers"][0]["env"] == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "none"}]
    assert "runtimeClassName" not in spec and spec["schedulerName"] == "default-scheduler"

    own = gpu_pod("own", scheduler=None)
    own["spec"]["runtimeClassName"] = other
    stack.create(own)
    assert stored(stack, "own")["spec"]["runtimeClassName"] == other  # the pod's own class wins (HAMi)


def test_a_910c_count_of_one_is_stored_as_its_module_pair(stack, deadline):
    """HAMi's ascend MutateAdmission through the real apiserver: it defaults the request from the limit before the
    webhook runs and validates an extended resource's request == limit after, so the webhook's two ``replace``
    operations must leave both at 2; an odd count is refused with the admission's one line."""
    pytest.importorskip("hami_plugins_ascend.plugin", exc_type=ImportError)
    url, _ = start_webhook(stack, installed=True)
    register(stack, url)
    c = "huawei.com/Ascend910C"

    def npu_pod(name: str, count: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"containers": [{"name": "main", "image": "npu:fake", "resources": {"limits": {c: count}}}]}}

    def active():
        out = stack.core.create_namespaced_pod(stack.ns, npu_pod(f"warm{time.monotonic_ns() % 10**6}", "1"),
                                               dry_run="All")
        return out.spec.scheduler_name == "hami-scheduler"

    deadline(active, 30, "the webhook configuration in effect")
    stack.create(npu_pod("pair", "1"))
    res = stored(stack, "pair")["spec"]["containers"][0]["resources"]
    assert res == {"limits": {c: "2"}, "requests": {c: "2"}}
    with pytest.raises(ApiException) as err:
        stack.create(npu_pod("odd", "3"))
    assert f"{c}: 3 must be 1 or even on a superPod chip" in err.value.body
