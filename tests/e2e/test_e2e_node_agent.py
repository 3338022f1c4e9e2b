"""A node registered by the node agent's own code (``hami node --once`` on a simulated profile) is what the
extender schedules on, through the real apiserver: the agent writes HAMi's register annotation, the real
kube-scheduler and our extender place a pod on the agent's devices."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import urllib.request

import pytest
from k8s_stack import RESOURCES, gpu_pod
from prometheus_client.parser import text_string_to_metric_families
from sched_testing import NVIDIA

from hami_hal.hami_compat import decode_register


def _agent_present() -> bool:
    try:
        return importlib.util.find_spec("hami_hal.node.cli") is not None and importlib.util.find_spec("grpc") is not None
    except ModuleNotFoundError:
        return False


AGENT = _agent_present()
PROFILE = "nvidia-2xt4-pcie"  # two simulated Tesla T4 (15360 MiB)


@pytest.mark.skipif(not AGENT, reason="e2e: the node agent (hami_hal.node, grpcio) is not in this tree")
def test_node_agent_registration_is_what_the_extender_schedules_on(stack, deadline):
    assert "nvidia.com/gpu" in RESOURCES
    name = f"{stack.ns}-agent"[:63]
    # the kubelet's part (node object, status); the device plugin's capacity comes with its registration
    stack.kubelet.register({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}, {"nvidia.com/gpu": "20"})
    stack.nodes.append(name)
    out = subprocess.run([sys.executable, "-m", "hami_hal.cli", "node", "--once", "--backend", "sim",
                          "--sim-node", PROFILE, "--node-name", name, "--kubeconfig", str(stack.cp.kubeconfig),
                          "--metrics-port", "0"], capture_output=True, text=True, timeout=120,
                         # not from the checkout: there `hami_plugins_nvidia` is the source folder, not the package
                         cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr[-2000:]
    anns = stack.core.read_node(name).metadata.annotations or {}
    devices = decode_register(anns[NVIDIA.annotations.node_register], NVIDIA.annotations.node_register)
    assert len(devices) == 2 and all(d.health for d in devices)
    _, port = stack.start_extender(extra=["--legacy-metrics"])
    stack.start_scheduler(port)
    stack.create(gpu_pod("on-agent-node", gpus=2, mem=4096, cores=20))
    deadline(lambda: stack.settled() == {"running": 1, "unschedulable": 0}, 60, "the pod running",
             explain=stack.describe)
    pod = json.loads(stack.core.read_namespaced_pod("on-agent-node", stack.ns, _preload_content=False).data)
    assert pod["spec"]["nodeName"] == name
    allocated = pod["metadata"]["annotations"][NVIDIA.annotations.allocated]
    assert {d.id for d in devices} == {part.split(",")[0] for part in allocated.rstrip(";").split(":") if part}
    assert stack.replay()["overcommits"] == []
    # HAMi's scheduler series on the extender's /metrics follow the bound pod (issue #11)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    mine = [s for f in text_string_to_metric_families(text) for s in f.samples if s.labels.get("pod") == "on-agent-node"]
    per_ctr = sorted((s.labels["device_uuid"], s.value) for s in mine if s.name == "hami_vgpu_memory_allocated_bytes")
    assert per_ctr == sorted((d.id, 4096 * 2**20) for d in devices)
    assert all(s.labels["zone"] == "vGPU" and s.labels["node"] == name for s in mine)
    assert any(s.name == "vGPUMemoryAllocated" for f in text_string_to_metric_families(text) for s in f.samples)
