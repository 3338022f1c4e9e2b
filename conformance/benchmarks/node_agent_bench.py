"""Node agent speed: kubelet registration time, ListAndWatch with 64 devices x 10 replicas, Allocate p50/p99.

Everything runs in one process on this machine: the agent (the NVIDIA plugin on a simulated node of 64
A100s, composed for this run), a fake kubelet speaking v1beta1 over real unix sockets, and the fake
Kubernetes API server over HTTP on 127.0.0.1. Simulated devices: the figures measure the agent's own
work (gRPC, API calls, plugin hooks, state folders), not a GPU.

    .venv/bin/python conformance/benchmarks/node_agent_bench.py --out docs/results/2026-12-04-node-agent-bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

NODE = "bench-node"
RESOURCE = "nvidia.com/gpu"
PROFILE = """apiVersion: hami-hal.io/v1alpha1
kind: NodeProfile
metadata:
  name: bench-64xa100
  description: 64 A100 80GB (a synthetic node for the node agent benchmark; no such machine exists)
spec:
  driver_version: "550.54.15"
  runtime_version: "12.4"
  devices:
    - {profile: nvidia-a100-sxm4-80gb, count: 64, numa_nodes: [0]}
"""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 3), "p99_ms": round(pct(ms, 99), 3),
            "max_ms": round(max(ms), 3), "mean_ms": round(statistics.fmean(ms), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="result JSON (a .md summary is written beside it)")
    p.add_argument("--allocations", type=int, default=300)
    p.add_argument("--registrations", type=int, default=21)
    p.add_argument("--health-flips", type=int, default=50)
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="hnb-"))
    (tmp / "bench.yaml").write_text(PROFILE)
    os.environ["HAMI_HAL_PROFILE_PATH"] = str(tmp / "bench.yaml")
    os.environ["HAMI_HAL_PLUGINS"] = "nvidia"

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scheduler" / "testing_support"))
    from sched_fakeapi import FakeApiServer  # the scheduler's test API server (not shipped)

    from hami_hal.manager import Hal
    from hami_hal.models import HealthStatus
    from hami_hal.node.agent import AgentConfig, NodeAgent
    from hami_hal.node.fake_kubelet import FakeKubelet
    from hami_hal.node.kubeapi import KubeNodeApi

    api = FakeApiServer()
    base = api.httpd.RequestHandlerClass

    class WithEvents(base):
        def do_POST(self):  # noqa: N802 - accept the agent's pod events as an API server does
            if self.path.split("?")[0].endswith("/events"):
                return self._send(201, self._body())
            return super().do_POST()

    api.httpd.RequestHandlerClass = WithEvents
    api.start()
    api.add_node({"metadata": {"name": NODE, "annotations": {}}})
    hal = Hal()
    inv = hal.discover("sim", node_name=NODE, sim_node="bench-64xa100")
    assert len(inv.devices) == 64, len(inv.devices)
    kubelet = FakeKubelet(tmp / "dp").start()
    cfg = AgentConfig(node_name=NODE, plugin_dir=tmp / "dp", state_root=tmp / "state", kubelet_poll=0.02,
                      health_interval=3600, register_interval=3600, cleanup_interval=3600)
    want = 64 * 10
    out: dict = {}

    # 1. registration: servers up + Register + first full ListAndWatch (640 IDs) seen by the kubelet
    reg_ms = []
    for _ in range(args.registrations):
        before = len(kubelet.registrations)
        t0 = time.perf_counter()
        agent = NodeAgent(hal, KubeNodeApi(host=api.url), cfg, inv)
        agent.start(background=False)
        kubelet.wait(lambda k, b=before: len(k.registrations) > b and len(k.healthy(RESOURCE)) == want, timeout=30)
        reg_ms.append((time.perf_counter() - t0) * 1000)
        agent.stop()
    out["registration_first"] = summary(reg_ms[:1]) | {"what": "the first start() in the process (gRPC and "
                                                                 "plugin warm-up included)"}
    out["registration"] = summary(reg_ms[1:]) | {"what": "start() to the kubelet holding all 640 healthy IDs "
                                                     "(serve, Register, GetDevicePluginOptions, first ListAndWatch, "
                                                     "node annotations patch)"}

    agent = NodeAgent(hal, KubeNodeApi(host=api.url), cfg, inv)
    agent.start()
    kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == want, timeout=30)

    # 2. re-registration after a kubelet restart (the agent's loop polls every 20 ms here)
    rereg_ms = []
    for _ in range(5):
        before = len(kubelet.registrations)
        t0 = time.perf_counter()
        kubelet.restart()
        kubelet.wait(lambda k, b=before: len(k.registrations) > b and len(k.healthy(RESOURCE)) == want, timeout=30)
        rereg_ms.append((time.perf_counter() - t0) * 1000)
    out["kubelet_restart_reregistration"] = summary(rereg_ms) | {"poll_interval_ms": 20}

    # 3. ListAndWatch: a device turns unhealthy/healthy -> the kubelet has the new 640-entry list
    lw_ms = []
    bad = inv.devices[7].uuid
    real = hal.health
    for i in range(args.health_flips):
        sick = i % 2 == 0
        hal.health = lambda d, sick=sick: HealthStatus(uuid=d.uuid, healthy=not sick, reason="bench") \
            if d.uuid == bad else real(d)
        t0 = time.perf_counter()
        agent.refresh_health()
        kubelet.wait(lambda k, s=sick: len(k.healthy(RESOURCE)) == (want - 10 if s else want), timeout=10)
        lw_ms.append((time.perf_counter() - t0) * 1000)
    hal.health = real
    out["list_and_watch_health_push"] = summary(lw_ms) | {"devices": 64, "replicas_per_device": 10,
                                                          "what": "health hooks of 64 devices + full list pushed "
                                                                  "+ received + node annotations patched"}

    # 4. Allocate: a bound pod waits; the kubelet's Allocate round trip (API list/get/patch, state folder,
    # plugin edits, event); the pod is then deleted so every call sees the same number of pods
    alloc_ms = []
    ids = kubelet.healthy(RESOURCE)
    for i in range(args.allocations):
        dev = inv.devices[i % 64].uuid
        name = f"p{i}"
        value = f"{dev},NVIDIA,1024,10:;"
        api.add_pod({"metadata": {"name": name, "namespace": "default", "uid": f"00-{i}",
                                  "annotations": {"hami.io/vgpu-node": NODE, "hami.io/bind-phase": "allocating",
                                                  "hami.io/bind-time": str(1_000 + i),
                                                  "hami.io/vgpu-devices-to-allocate": value,
                                                  "hami.io/vgpu-devices-allocated": value}},
                     "spec": {"nodeName": NODE, "containers": [{"name": "main"}]}, "status": {"phase": "Pending"}})
        t0 = time.perf_counter()
        resp = kubelet.allocate(RESOURCE, [[ids[(i % 64) * 10]]])
        alloc_ms.append((time.perf_counter() - t0) * 1000)
        assert resp.container_responses[0].envs["NVIDIA_VISIBLE_DEVICES"] == dev
        api.delete_pod("default", name)
    out["allocate"] = summary(alloc_ms) | {"what": "kubelet Allocate round trip for a 1-GPU share "
                                                   "(1024 MiB, 10 %), pods on the node: 1"}
    agent.stop()
    kubelet.stop()
    api.stop()

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = ""
    record = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python conformance/benchmarks/node_agent_bench.py --out " + str(args.out),
        "git": rev, "host": socket.gethostname(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "provenance": "simulated: NVIDIA plugin on a synthetic 64x A100 80GB node profile (bench-64xa100); fake "
                      "kubelet (v1beta1 over unix sockets) and fake API server (HTTP, 127.0.0.1) in the same process",
        "results": out,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"# Node agent benchmark ({record['date']})", "", f"Command: `{record['command']}` (git {rev})", "",
             f"Provenance: {record['provenance']}. Machine: {record['cpu_count']} CPUs shared with other jobs "
             f"(load average {record['load_average_1_5_15']} at the end), Python {record['python']}.", "", "| measure | n | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|"]
    for k, v in out.items():
        lines.append(f"| {k} | {v['n']} | {v['p50_ms']} | {v['p99_ms']} | {v['max_ms']} |")
    lines += ["", *(f"- {k}: {v['what']}" for k, v in out.items() if "what" in v), ""]
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
