"""The chart's ValidatingAdmissionPolicy in the real apiserver: only the scheduler's and the node agents'
service accounts write HAMi's allocation/bind pod annotations and the hami.io/vgpu-node pod label, and a placed
pod's request annotations; the pod author keeps its request annotations until placement and its other labels.

Requests are made as each service account through impersonation (the admin token may impersonate), with a Role
giving all of them the same pod rights, so every refusal below is the policy's, not RBAC's. The policy is
cluster-wide: it is deleted at teardown so the other e2e tests' extender (the admin) is not refused."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml
from k8s_controlplane import REPO, bin_dir
from kubernetes import client
from kubernetes.client.rest import ApiException

CHART = REPO / "charts" / "hami-hal"
TO_ALLOCATE = "hami.io/vgpu-devices-to-allocate"
ALLOCATED = "hami.io/vgpu-devices-allocated"
NODE = "hami.io/vgpu-node"


@pytest.fixture(scope="module")
def helm():
    path = bin_dir() / "helm"
    if not path.is_file():
        pytest.skip(f"e2e: helm not built in {bin_dir()} (run `make k8s-bins`)")
    return str(path)


def as_user(stack, user: str) -> client.CoreV1Api:
    api = stack.cp.api_client()
    api.set_default_header("Impersonate-User", user)
    return client.CoreV1Api(api)


def pod(name: str, annotations: dict[str, str], labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}


def refused(call, *keys: str) -> str:
    with pytest.raises(ApiException) as err:
        call()
    assert err.value.status == 403, err.value.body
    msg = json.loads(err.value.body)["message"]
    assert "ValidatingAdmissionPolicy" in msg and all(k in msg for k in keys), msg
    return msg


def install_policy(stack, helm: str, release: str) -> tuple[str, str]:
    out = subprocess.run([helm, "template", release, str(CHART), "--namespace", stack.ns, "--kube-version", "1.37.2",
                          "--show-only", "templates/scheduler/annotation-guard.yaml"],
                         capture_output=True, text=True, check=True)
    policy, binding = [d for d in yaml.safe_load_all(out.stdout) if d]
    adm = client.AdmissionregistrationV1Api(stack.api)
    adm.create_validating_admission_policy(policy)
    stack.cleanups.append(lambda: adm.delete_validating_admission_policy(policy["metadata"]["name"]))
    adm.create_validating_admission_policy_binding(binding)
    stack.cleanups.append(lambda: adm.delete_validating_admission_policy_binding(binding["metadata"]["name"]))
    stack.cleanups.append(lambda: wait_policy_gone(stack))
    sa = f"system:serviceaccount:{stack.ns}:"
    return sa + f"{release}-hami-hal-scheduler", sa + f"{release}-hami-hal-node"


def wait_policy_gone(stack, timeout: float = 30) -> None:
    """After deleting the policy: until the apiserver's informer dropped it, the admin (as the other e2e tests'
    extender) would still be refused, so teardown waits for an allocation write by the admin to pass."""
    end = time.monotonic() + timeout
    while True:
        try:
            stack.core.create_namespaced_pod(stack.ns, pod(f"gone{time.monotonic_ns() % 10**6}", {ALLOCATED: "x"}),
                                             dry_run="All")
            return
        except ApiException:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def grant_pods(stack, users: list[str]) -> None:
    rbac = client.RbacAuthorizationV1Api(stack.api)
    rbac.create_namespaced_role(stack.ns, {
        "metadata": {"name": "pods"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/status", "pods/binding"],
                   "verbs": ["get", "list", "create", "update", "patch", "delete"]}]})
    rbac.create_namespaced_role_binding(stack.ns, {
        "metadata": {"name": "pods"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods"},
        "subjects": [{"kind": "ServiceAccount", "name": u.rsplit(":", 1)[1], "namespace": stack.ns} for u in users]})


def test_only_scheduler_and_node_agent_write_allocation_annotations(stack, helm, deadline):
    sched_user, node_user = install_policy(stack, helm, "guard")
    tenant_user = f"system:serviceaccount:{stack.ns}:tenant"
    grant_pods(stack, [sched_user, node_user, tenant_user])
    tenant, sched, node = as_user(stack, tenant_user), as_user(stack, sched_user), as_user(stack, node_user)

    def active():  # the apiserver compiles the policy from its informer
        try:
            tenant.create_namespaced_pod(stack.ns, pod(f"warm{time.monotonic_ns() % 10**6}", {ALLOCATED: "x"}),
                                         dry_run="All")
        except ApiException as exc:
            return exc.status == 403 and "ValidatingAdmissionPolicy" in exc.body
        return False

    deadline(active, 30, "the annotation policy in effect")

    # the pod author: creates its pod with request annotations, and may change them later
    tenant.create_namespaced_pod(stack.ns, pod("job", {"nvidia.com/use-gputype": "A100"}))
    tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {"nvidia.com/use-gputype": "H100",
                                                                              "nvidia.com/use-gpuuuid": "GPU-a"}}})
    # a tenant cannot create a pod carrying an allocation (a ReplicaSet template would carry it the same way)
    refused(lambda: tenant.create_namespaced_pod(stack.ns, pod("forged", {ALLOCATED: "GPU-b,NVIDIA,1024,10:;"})),
            ALLOCATED, tenant_user)
    # ... nor one naming the node it was filtered for, by annotation or by label (HAMi's monitor and the bind
    # replay list a node's pods by the label)
    msg = refused(lambda: tenant.create_namespaced_pod(stack.ns, pod("forgednode", {}, {NODE: "n2"})), tenant_user)
    assert f"metadata.labels: {NODE} on a new pod" in msg and "metadata.annotations" not in msg, msg
    msg = refused(lambda: tenant.create_namespaced_pod(stack.ns, pod("forgedboth", {NODE: "n2"}, {NODE: "n2"})))
    assert f"metadata.annotations: {NODE}; metadata.labels: {NODE} on a new pod" in msg, msg
    # the scheduler writes the allocation at Filter/Bind (what the extender patches: the node label with it)
    sched.patch_namespaced_pod("job", stack.ns, {"metadata": {"labels": {NODE: "n1"}, "annotations": {
        NODE: "n1", TO_ALLOCATE: "GPU-a,NVIDIA,1024,10:;", ALLOCATED: "GPU-a,NVIDIA,1024,10:;",
        "hami.io/bind-phase": "allocating"}}})
    # the tenant cannot move its pod to another node's list, nor take it off its own, nor edit the annotation
    refused(lambda: tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"labels": {NODE: "n2"}}}),
            f"metadata.labels: {NODE} may be changed only")
    refused(lambda: tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"labels": {NODE: None}}}),
            f"metadata.labels: {NODE}")
    refused(lambda: tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {NODE: "n2"}}}),
            f"metadata.annotations: {NODE} may be changed only")
    # the tenant cannot edit, add or remove an allocation annotation on its bound pod, by patch or by status update
    refused(lambda: tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {
        TO_ALLOCATE: "GPU-other,NVIDIA,1024,10:;"}}}), TO_ALLOCATE)
    refused(lambda: tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {ALLOCATED: None}}}),
            ALLOCATED)
    refused(lambda: tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {
        "hami.io/bind-phase": "success", "nvidia.com/use-gputype": "A10"}}}), "hami.io/bind-phase")
    refused(lambda: tenant.patch_namespaced_pod_status("job", stack.ns, {"metadata": {"annotations": {
        TO_ALLOCATE: "GPU-other,NVIDIA,1024,10:;"}}}), TO_ALLOCATE)
    # a cluster admin (system:masters skips RBAC, not admission) is refused too
    refused(lambda: stack.core.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {
        TO_ALLOCATE: "GPU-other"}}}), TO_ALLOCATE, "not by admin")
    # nor through a Binding (the apiserver copies a Binding's annotations onto the pod)
    binding = client.V1Binding(metadata=client.V1ObjectMeta(name="job", annotations={TO_ALLOCATE: "GPU-other"}),
                               target=client.V1ObjectReference(api_version="v1", kind="Node", name="n1"))
    refused(lambda: tenant.create_namespaced_pod_binding("job", stack.ns, binding, _preload_content=False),
            TO_ALLOCATE)
    # once placed, the request the devices were chosen for is no longer the tenant's: no selector or policy
    # annotation may be changed, added or removed, by patch or status update
    placed = "metadata.annotations of a placed pod: "
    msg = refused(lambda: tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {
        "nvidia.com/use-gpuuuid": "GPU-b"}}}), placed + "nvidia.com/use-gpuuuid may be changed only", tenant_user)
    assert "metadata.annotations: " not in msg, msg  # named as a request annotation, not an allocation one
    refused(lambda: tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {
        "nvidia.com/nouse-gpuuuid": "GPU-a", "hami.io/gpu-scheduler-policy": "binpack"}}}),
        placed + "hami.io/gpu-scheduler-policy, nvidia.com/nouse-gpuuuid")
    refused(lambda: tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {
        "nvidia.com/use-gputype": None}}}), placed + "nvidia.com/use-gputype")
    refused(lambda: tenant.patch_namespaced_pod_status("job", stack.ns, {"metadata": {"annotations": {
        "nvidia.com/use-gpuuuid": "GPU-b"}}}), placed + "nvidia.com/use-gpuuuid")
    refused(lambda: stack.core.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {
        "nvidia.com/use-gpuuuid": "GPU-b"}}}), placed + "nvidia.com/use-gpuuuid", "not by admin")
    # the scheduler may (a re-filter rewrites the record with it)
    sched.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {"nvidia.com/numa-bind": "false"}}})
    # a write that leaves the guarded keys as they are passes (the tenant's label and other annotations)
    tenant.patch_namespaced_pod("job", stack.ns, {"metadata": {"labels": {"team": "a"},
                                                               "annotations": {"team.example/owner": "b"}}})
    # the node agent finishes Allocate: trims to-allocate, sets bind-phase
    node.patch_namespaced_pod("job", stack.ns, {"metadata": {"annotations": {
        TO_ALLOCATE: ";", "hami.io/bind-phase": "success"}}})
    # ... but creates no pod carrying them (only the scheduler may, on CREATE)
    refused(lambda: node.create_namespaced_pod(stack.ns, pod("nodemade", {"hami.io/bind-phase": "success"})),
            "hami.io/bind-phase", node_user)
    anns = stack.core.read_namespaced_pod("job", stack.ns).metadata.annotations
    assert anns[TO_ALLOCATE] == ";" and anns[ALLOCATED] == "GPU-a,NVIDIA,1024,10:;"
    assert anns["hami.io/bind-phase"] == "success" and anns["nvidia.com/use-gputype"] == "H100"
    assert anns["nvidia.com/use-gpuuuid"] == "GPU-a" and "nvidia.com/nouse-gpuuuid" not in anns
    assert stack.core.read_namespaced_pod("job", stack.ns).metadata.labels == {"team": "a", NODE: "n1"}
    assert anns[NODE] == "n1"
    # the scheduler may create one (the policy's CREATE rule names it alone)
    sched.create_namespaced_pod(stack.ns, pod("schedmade", {ALLOCATED: "GPU-a,NVIDIA,1024,10:;"}, {NODE: "n1"}),
                                dry_run="All")
    # the scheduler's undo of a failed bind clears the label with the annotations
    sched.patch_namespaced_pod("job", stack.ns, {"metadata": {"labels": {NODE: None}, "annotations": {NODE: None}}})
    assert NODE not in stack.core.read_namespaced_pod("job", stack.ns).metadata.labels


def _render(helm: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([helm, "template", "hami", str(CHART), "--namespace", "hami-system", *extra],
                          capture_output=True, text=True)


@pytest.mark.parametrize("extra, kinds", [
    (["--kube-version", "1.37.2"], ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]),
    (["--kube-version", "1.37.2", "--set", "scheduler.annotationGuard.enabled=false"], []),
    (["--kube-version", "1.29.0", "--set", "scheduler.annotationGuard.enabled=false"], []),
])
def test_annotation_guard_switch(helm, extra, kinds):
    out = _render(helm, *extra)
    assert out.returncode == 0, out.stderr
    got = [d["kind"] for d in yaml.safe_load_all(out.stdout) if d and "ValidatingAdmissionPolicy" in d["kind"]]
    assert got == kinds


@pytest.mark.parametrize("extra, line", [
    (["--kube-version", "1.29.0"], "scheduler.annotationGuard.enabled: Kubernetes v1.29.0 has no"),
    (["--kube-version", "1.37.2", "--set", "scheduler.annotationGuard.failurePolicy=Warn"],
     "scheduler.annotationGuard.failurePolicy: Warn must be Fail or Ignore"),
    (["--kube-version", "1.37.2", "--set", "scheduler.annotationGuard.keys=null"],
     "scheduler.annotationGuard.keys: empty"),
    (["--kube-version", "1.37.2", "--set", "scheduler.annotationGuard.labels=null"],
     "scheduler.annotationGuard.labels: empty"),
    (["--kube-version", "1.37.2", "--set", "scheduler.annotationGuard.requestKeys=null"],
     "scheduler.annotationGuard.requestKeys: empty"),
])
def test_annotation_guard_bad_values_fail_in_one_line(helm, extra, line):
    out = _render(helm, *extra)
    assert out.returncode != 0 and line in out.stderr, out.stderr


def test_annotation_guard_extra_writers_and_names(helm):
    out = _render(helm, "--kube-version", "1.37.2", "--set", "scheduler.annotationGuard.extraWriters={ops:janitor}",
                  "--show-only", "templates/scheduler/annotation-guard.yaml")
    policy, binding = [d for d in yaml.safe_load_all(out.stdout) if d]
    create, update = (v["expression"] for v in policy["spec"]["validations"])
    assert '"system:serviceaccount:hami-system:hami-hami-hal-scheduler"' in create and "node" not in create
    assert '"system:serviceaccount:hami-system:hami-hami-hal-node"' in update and '"ops:janitor"' in update
    assert policy["spec"]["failurePolicy"] == "Fail" and binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]


def test_annotation_guard_extra_request_keys(helm):
    out = _render(helm, "--kube-version", "1.37.2", "--set",
                  "scheduler.annotationGuard.extraRequestKeys={hami.io/use-Ascend910X-uuid}",
                  "--show-only", "templates/scheduler/annotation-guard.yaml")
    policy = next(d for d in yaml.safe_load_all(out.stdout) if d)
    held = json.loads(next(v["expression"] for v in policy["spec"]["variables"] if v["name"] == "requestKeys"))
    assert held[-1] == "hami.io/use-Ascend910X-uuid" and "nvidia.com/use-gpuuuid" in held
