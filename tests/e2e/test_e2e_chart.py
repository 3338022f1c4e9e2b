"""charts/hami-hal: ``helm lint``, ``helm template`` (helm built from its Go module), every rendered object
applied with server-side dry-run against the real apiserver (full schema validation and admission), and
the rendered kube-scheduler configuration loaded by the real kube-scheduler."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from k8s_controlplane import REPO, bin_dir
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

CHART = REPO / "charts" / "hami-hal"
KUBE_VERSION = "1.37.2"

VARIANTS = {
    "defaults": [],
    "ha-no-webhook-clusterip": ["--set", "scheduler.replicas=2", "--set", "scheduler.admissionWebhook.enabled=false",
                                "--set", "scheduler.service.type=ClusterIP",
                                "--set", "scheduler.annotationGuard.enabled=false", "--set", "devicePlugin.service.type=ClusterIP",
                                "--set", "devicePlugin.deviceListStrategy=cdi", "--set", "legacyMetrics=true",
                                "--set-string", "capabilityMatrix={\"rows\": []}",
                                "--set", "extraManagedResources={huawei.com/Ascend910B3,huawei.com/Ascend910B3-memory}"],
}


@pytest.fixture(scope="module")
def helm():
    path = bin_dir() / "helm"
    if not path.is_file():
        pytest.skip(f"e2e: helm not built in {bin_dir()} (run `make k8s-bins`)")
    return str(path)


def render(helm: str, ns: str, extra: list[str]) -> list[dict]:
    out = subprocess.run([helm, "template", "hami", str(CHART), "--namespace", ns, "--kube-version", KUBE_VERSION,
                          *extra], capture_output=True, text=True, check=True)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_chart_lints(helm):
    out = subprocess.run([helm, "lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_manifests_pass_server_side_dry_run(helm, control_plane, variant):
    ns = f"hami-chart-{variant}"[:63]
    core = client.CoreV1Api(control_plane.api_client())
    try:
        core.create_namespace({"metadata": {"name": ns}})
    except ApiException as exc:
        assert exc.status == 409
    docs = render(helm, ns, VARIANTS[variant])
    kinds = sorted(d["kind"] for d in docs)
    expected = {"Deployment", "DaemonSet", "Service", "ClusterRole", "ClusterRoleBinding", "ServiceAccount",
                "ConfigMap"}
    assert expected <= set(kinds), kinds
    if variant == "defaults":
        assert {"MutatingWebhookConfiguration", "Secret", "ValidatingAdmissionPolicy",
                "ValidatingAdmissionPolicyBinding"} <= set(kinds)  # the policy's CEL compiles in the dry-run
    else:
        assert "ValidatingAdmissionPolicy" not in kinds
    dyn = DynamicClient(control_plane.api_client())
    refused = []
    for doc in docs:
        res = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        target_ns = doc["metadata"].get("namespace") if res.namespaced else None
        try:
            dyn.server_side_apply(res, body=doc, name=doc["metadata"]["name"], namespace=target_ns,
                                  field_manager="hami-hal-chart-test", dry_run="All")
        except ApiException as exc:
            refused.append(f"{doc['kind']}/{doc['metadata']['name']}: {json.loads(exc.body).get('message')}")
    assert refused == []
    # the same path refuses a broken object (so an empty list above means the apiserver accepted them all)
    broken = next(d for d in docs if d["kind"] == "Deployment")
    broken["spec"]["template"]["spec"]["containers"][0]["name"] = "Not_A_DNS_Label"
    with pytest.raises(ApiException) as err:
        dyn.server_side_apply(dyn.resources.get(api_version="apps/v1", kind="Deployment"), body=broken,
                              name=broken["metadata"]["name"], namespace=ns, field_manager="t", dry_run="All")
    assert err.value.status == 422


def test_rendered_scheduler_config_loads_in_kube_scheduler(helm, control_plane, tmp_path):
    """The real kube-scheduler parses, defaults and validates the chart's KubeSchedulerConfiguration."""
    docs = render(helm, "hami-system", [])
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and "config.yaml" in d.get("data", {}))
    cfg = yaml.safe_load(cm["data"]["config.yaml"])
    cfg["clientConnection"] = {"kubeconfig": str(control_plane.kubeconfig)}  # in-cluster in a real deployment
    src, dst = tmp_path / "config.yaml", tmp_path / "effective.yaml"
    src.write_text(yaml.safe_dump(cfg))
    out = subprocess.run([str(bin_dir() / "kube-scheduler"), f"--config={src}", f"--write-config-to={dst}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    eff = yaml.safe_load(dst.read_text())
    ext = eff["extenders"][0]
    assert ext["urlPrefix"] == "http://127.0.0.1:8888" and ext["nodeCacheCapable"] is True
    assert ext["filterVerb"] == "filter" and ext["bindVerb"] == "bind"
    assert {"name": "nvidia.com/gpu", "ignoredByScheduler": True} in ext["managedResources"]
    assert eff["profiles"][0]["schedulerName"] == "hami-scheduler"


def _parser_accepts(parser, argv: list[str]) -> None:
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on an unknown flag or a bad choice
        raise AssertionError(f"{' '.join(argv)} is refused by the CLI") from exc


def test_rendered_commands_are_accepted_by_our_clis(helm):
    """Every flag the chart passes exists in the CLI of the version in this tree (no typo reaches a cluster)."""
    import argparse

    from hami_scheduler.cli import add_commands

    from hami_hal.cli.main import build_parser

    sched = argparse.ArgumentParser(prog="hami-scheduler")
    add_commands(sched.add_subparsers(dest="cmd", required=True))
    hami = build_parser()
    node_cli = "node" in hami._subparsers._group_actions[0].choices
    checked = 0
    for variant in sorted(VARIANTS):
        for doc in render(helm, "hami-system", VARIANTS[variant]):
            if doc["kind"] not in ("Deployment", "DaemonSet"):
                continue
            for c in doc["spec"]["template"]["spec"]["containers"]:
                cmd = c["command"]
                if cmd[0] == "hami-scheduler":
                    _parser_accepts(sched, cmd[1:])
                    checked += 1
                elif cmd[0] == "hami" and node_cli:
                    _parser_accepts(hami, cmd[1:])
                    checked += 1
    assert checked >= 3  # extender and webhook (defaults) + extender (second variant), + node agents when present


@pytest.mark.parametrize("extra, expected", [
    ([], []),
    (["--set", "devices.nvidia.overwriteEnv=true", "--set-string", "devices.nvidia.runtimeClassName=nvidia"],
     [("nvidia", "nvidia", "NVIDIA_VISIBLE_DEVICES")]),
])
def test_rendered_device_config_is_read_by_the_webhook(helm, tmp_path, extra, expected):
    """The scheduler's device ConfigMap (the webhook's --device-config) at the chart's defaults applies nothing
    beyond HAMi's request defaults; devices.nvidia.overwriteEnv / runtimeClassName reach the webhook."""
    from hami_plugins_nvidia.vendor import vendor_info
    from hami_scheduler.device_config import read_device_config

    (cm,) = [d for d in render(helm, "hami-system", extra)
             if d["kind"] == "ConfigMap" and "device-config.yaml" in d.get("data", {})]
    f = tmp_path / "device-config.yaml"
    f.write_text(cm["data"]["device-config.yaml"])
    cfg = read_device_config([vendor_info()], str(f))
    got = [(a.vendor, a.runtime_class_name, a.hide_env.variable if a.hide_env else None) for a in cfg.admission]
    assert got == expected
