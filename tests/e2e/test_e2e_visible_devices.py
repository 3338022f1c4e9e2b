"""The visible-devices check through the real apiserver: registered as the chart registers it (the mutating webhook
with HAMi's ``hami.io/webhook=ignore`` object selector, and the ``/validate`` route as a ValidatingWebhookConfiguration
without it, also for ``pods/ephemeralcontainers``), a pod setting ``NVIDIA_VISIBLE_DEVICES=all`` is refused with
one line naming the container, the variable and the value, also when it carries the ignore label and when the
variable comes in an ephemeral container (``kubectl debug``); ``none`` passes and is stored as written. A GPU
container's ``envFrom`` without a prefix is refused the same way, naming the container and the ConfigMap. The chart
renders the validating configuration, and leaves it out with ``allowVisibleDevicesEnv``."""

from __future__ import annotations

import base64
import json
import subprocess
import time

import pytest
from k8s_controlplane import REPO, bin_dir
from k8s_stack import gpu_pod
from kubernetes import client
from kubernetes.client.rest import ApiException
from test_e2e_webhook import start_webhook, stored

VAR = "NVIDIA_VISIBLE_DEVICES"


def register_both(stack, url: str) -> None:
    """The chart's two configurations, pointed at this test's webhook and namespace."""
    ca = base64.b64encode((stack.cp.pki / "ca.crt").read_bytes()).decode()
    pods = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
    common = {"admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail",
              "timeoutSeconds": 10,
              "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": stack.ns}}}
    adm = client.AdmissionregistrationV1Api(stack.api)
    mname, vname = f"{stack.ns}-hami-webhook", f"{stack.ns}-visible-devices"
    adm.create_mutating_webhook_configuration({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": mname},
        "webhooks": [{**common, "name": "vgpu.hami.io", "reinvocationPolicy": "Never", "rules": [pods],
                      "clientConfig": {"url": url, "caBundle": ca},
                      "objectSelector": {"matchExpressions": [
                          {"key": "hami.io/webhook", "operator": "NotIn", "values": ["ignore"]}]}}]})
    stack.cleanups.append(lambda: adm.delete_mutating_webhook_configuration(mname))
    adm.create_validating_webhook_configuration({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": vname},
        "webhooks": [{**common, "name": "visible-devices.hami-hal.io",
                      "clientConfig": {"url": url.rsplit("/", 1)[0] + "/validate", "caBundle": ca},
                      "rules": [pods, {"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                       "resources": ["pods/ephemeralcontainers"]}]}]})
    stack.cleanups.append(lambda: adm.delete_validating_webhook_configuration(vname))


def refusal(call) -> str:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 400, err.value.body
    return json.loads(err.value.body)["message"]


def with_env(pod: dict, value: str, labels: dict | None = None) -> dict:
    pod["spec"]["containers"][0]["env"] = [{"name": VAR, "value": value}]
    if labels:
        pod["metadata"]["labels"] = labels
    return pod


def test_visible_devices_env_refused_through_the_apiserver(stack, deadline):
    url, _ = start_webhook(stack)
    register_both(stack, url)

    def active(label: dict, dry_name: str) -> bool:  # both configurations are picked up by the apiserver's informer
        pod = with_env(gpu_pod(f"{dry_name}{time.monotonic_ns() % 10**6}", scheduler=None), "all", label)
        try:
            stack.core.create_namespaced_pod(stack.ns, pod, dry_run="All")
        except ApiException as exc:
            return exc.status == 400
        return False

    deadline(lambda: active({}, "warm"), 30, "the mutating webhook in effect")
    deadline(lambda: active({"hami.io/webhook": "ignore"}, "warmv"), 30, "the validating webhook in effect")

    msg = refusal(lambda: stack.create(with_env(gpu_pod("wide", scheduler=None), "all")))
    assert f"spec.containers[0].env[0]: container 'main' sets {VAR}='all', which widens the devices" in msg, msg

    # HAMi's opt-out label skips the mutating webhook, not the check
    ignored = with_env(gpu_pod("ignored", scheduler=None), "GPU-00000000-0000-0000-0000-000000000001",
                       {"hami.io/webhook": "ignore"})
    msg = refusal(lambda: stack.create(ignored))
    assert f"container 'main' sets {VAR}='GPU-00000000-0000-0000-0000-000000000001'" in msg, msg

    # envFrom: a ConfigMap's keys are not readable at admission, so one that could set the variable is refused in
    # a container asking for a GPU, by both routes; a prefix the variable's name does not start with passes
    def env_from(name: str, labels: dict | None = None, prefix: str | None = None) -> dict:
        pod = gpu_pod(name, scheduler=None)
        pod["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "gpus"}, **(
            {"prefix": prefix} if prefix is not None else {})}]
        if labels:
            pod["metadata"]["labels"] = labels
        return pod

    line = ("spec.containers[0].envFrom[0]: container 'main' asks for nvidia.com/gpu and takes variables from "
            f"ConfigMap 'gpus' without a prefix, which could set {VAR}")
    for labels in (None, {"hami.io/webhook": "ignore"}):
        msg = refusal(lambda labels=labels: stack.create(env_from("fromcm", labels)))
        assert line in msg, msg
    stack.create(env_from("prefixed", prefix="APP_"))

    stack.create(with_env(gpu_pod("hidden", scheduler=None), "none"))
    spec = stored(stack, "hidden")["spec"]
    assert spec["containers"][0]["env"] == [{"name": VAR, "value": "none"}]
    assert spec["schedulerName"] == "hami-scheduler"  # mutated as usual

    # kubectl debug: an ephemeral container added to the stored pod goes through the validating route
    def debug(value: str):
        pod = stored(stack, "hidden")
        pod["spec"]["ephemeralContainers"] = [{"name": f"dbg-{value or 'empty'}", "image": "busybox",
                                               "env": [{"name": VAR, "value": value}]}]
        return stack.core.patch_namespaced_pod_ephemeralcontainers(
            "hidden", stack.ns, {"spec": {"ephemeralContainers": pod["spec"]["ephemeralContainers"]}})

    msg = refusal(lambda: debug("all"))
    assert f"spec.ephemeralContainers[0].env[0]: container 'dbg-all' sets {VAR}='all'" in msg, msg
    debug("void")
    assert [c["name"] for c in stored(stack, "hidden")["spec"]["ephemeralContainers"]] == ["dbg-void"]


def test_chart_registers_the_check_unless_allowed():
    helm = bin_dir() / "helm"
    if not helm.is_file():
        pytest.skip(f"e2e: helm not built in {bin_dir()} (run `make k8s-bins`)")
    import yaml

    def render(*extra: str) -> list[dict]:
        out = subprocess.run([str(helm), "template", "hami", str(REPO / "charts" / "hami-hal"), "--namespace", "hs",
                              "--kube-version", "1.37.2", *extra], capture_output=True, text=True, check=True)
        return [d for d in yaml.safe_load_all(out.stdout) if d]

    def webhook_cmd(docs: list[dict]) -> list[str]:
        dep = next(d for d in docs if d["kind"] == "Deployment" and "scheduler" in d["metadata"]["name"])
        return next(c["command"] for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "webhook")

    docs = render()
    (vwc,) = [d for d in docs if d["kind"] == "ValidatingWebhookConfiguration"]
    (hook,) = vwc["webhooks"]
    assert hook["clientConfig"]["service"]["path"] == "/validate" and "objectSelector" not in hook
    assert {"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
            "resources": ["pods/ephemeralcontainers"], "scope": "Namespaced"} in hook["rules"]
    assert hook["failurePolicy"] == "Ignore"  # the chart's default, as HAMi's; docs/install.md says what it means
    assert "--allow-visible-devices-env" not in webhook_cmd(docs)

    allowed = render("--set", "scheduler.admissionWebhook.allowVisibleDevicesEnv=true")
    assert not [d for d in allowed if d["kind"] == "ValidatingWebhookConfiguration"]
    assert "--allow-visible-devices-env" in webhook_cmd(allowed)
