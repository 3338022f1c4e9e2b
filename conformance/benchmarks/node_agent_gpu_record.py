"""Issue #11's GPU record: the node agent's Allocate answer, applied to a process, on a real NVIDIA GPU.

On a machine with a GPU, its driver, torch and the built interposer (libvgpu.so in hami-plugins-nvidia):
1. the agent runs on the real devices (fake kubelet over unix sockets, fake API server on 127.0.0.1);
2. a pod bound to the node asks for one GPU slice of ``--memory-mib`` (4096) and ``--cores`` (30 %);
3. the fake kubelet calls Allocate; the answer's env and mounts are turned into a host process's env
   (``host_process_env``: container paths -> the host paths mounted there, LD_PRELOAD = the mounted library);
4. memory: the interposer's ``mem torch`` worker allocates until refused; at its peak the agent's
   exporter is scraped (``hami_vgpu_memory_used_bytes`` of the pod) and compared with what torch reserved;
   bytes allocated over the limit must be 0;
5. compute: bf16 matmul throughput with the env, as a share of the same matmul without it.
Criteria (issue #11): 0 bytes over the limit, share within cores ± 5 points, exporter within 1 % of the
process's usage. Writes ``--out`` (JSON) and a .md beside it, naming the GPU, driver and command.

    python conformance/benchmarks/node_agent_gpu_record.py --device 0 --out docs/results/2026-12-04-h200-node-agent.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

NODE = socket.gethostname()
RESOURCE = "nvidia.com/gpu"
MIB = 1 << 20


def host_process_env(answer, base: dict[str, str] | None = None) -> dict[str, str]:
    """What a container runtime would give a container, for a process on the host instead (benchmarks).

    The answer's env with every value that names a path inside the container rewritten to the host path
    mounted there; ``NVIDIA_VISIBLE_DEVICES`` becomes ``CUDA_VISIBLE_DEVICES`` (CUDA accepts UUIDs); a
    library mounted over ``/etc/ld.so.preload``'s target becomes ``LD_PRELOAD``.
    """
    from hami_hal.models.isolation import host_path

    mounts = [(m.container_path.rstrip("/"), m.host_path) for m in answer.mounts]
    env = dict(base or {})
    for key, value in answer.envs.items():
        env[key] = host_path(answer.mounts, value) if value.startswith("/") else value
    if "NVIDIA_VISIBLE_DEVICES" in answer.envs:
        env["CUDA_VISIBLE_DEVICES"] = answer.envs["NVIDIA_VISIBLE_DEVICES"]
    if any(c == "/etc/ld.so.preload" for c, _ in mounts):
        libs = [h for c, h in mounts if c.endswith(".so")]
        if libs:
            env["LD_PRELOAD"] = libs[0]
    return env


def _worker(worker: Path, args: list[str], env: dict[str, str], on_peak=None, timeout: float = 300) -> dict:
    """Run a bench worker; call ``on_peak(pid)`` while it holds its peak allocation (PEAK handshake)."""
    err_file = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty stderr cannot block the worker
    proc = subprocess.Popen([sys.executable, str(worker), *args], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=err_file, text=True)
    peak = None
    result = None
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        if line.startswith("PEAK"):
            peak = on_peak(proc.pid) if on_peak else None
            proc.stdin.write("\n")
            proc.stdin.flush()
        elif line.startswith("RESULT "):
            result = json.loads(line[7:])
        if time.monotonic() > deadline:
            proc.kill()
            break
    proc.wait(timeout=30)
    err_file.seek(0)
    stderr = err_file.read()[-2000:]
    err_file.close()
    if result is None:
        raise SystemExit(f"worker {' '.join(args)} exited {proc.returncode}: {stderr}")
    return {"result": result, "peak": peak}


def _series(agent, name: str, pod: str) -> float | None:
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry()
    for c in agent.collectors():
        reg.register(c)
    vals = [s.value for fam in reg.collect() for s in fam.samples if s.name == name and s.labels.get("pod") == pod]
    return sum(vals) if vals else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", type=int, default=0, help="GPU index on this machine")
    p.add_argument("--memory-mib", type=int, default=4096)
    p.add_argument("--cores", type=int, default=30)
    p.add_argument("--seconds", type=float, default=5.0, help="matmul run length")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--backend", choices=("real", "sim"), default="real",
                   help="sim: a dry run of the plumbing on a simulated node with --worker as a stand-in (its "
                        "record says so and is never a GPU result)")
    p.add_argument("--worker", type=Path, help="benchmark worker (default: the interposer's bench_worker.py)")
    args = p.parse_args(argv)
    dry = args.backend == "sim"

    from hami_plugins_nvidia.interposer import library_path, library_version
    from hami_plugins_nvidia.interposer.probe import WORKER
    from hami_plugins_nvidia.interposer.usage_probe import nvml_device_used, nvml_process_used
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scheduler" / "testing_support"))
    from sched_fakeapi import FakeApiServer  # the scheduler's test API server (not shipped)

    from hami_hal.manager import Hal

    try:  # the committed device-plugin stubs refuse a grpcio/protobuf older than the ones that generated them
        from hami_hal.node.agent import AgentConfig, NodeAgent
        from hami_hal.node.fake_kubelet import FakeKubelet
        from hami_hal.node.kubeapi import KubeNodeApi
    except Exception as err:  # noqa: BLE001 - ImportError, grpc's RuntimeError, protobuf's VersionError
        raise SystemExit(f"the node agent cannot load here: {type(err).__name__}: {str(err).splitlines()[0][:300]} "
                         "(needs grpcio>=1.85.1 and protobuf>=7.35.1; see the wheels the GPU run carries)") from None

    worker = args.worker or WORKER
    if not dry and library_path() is None:
        raise SystemExit("libvgpu.so is not built: reinstall hami-plugins-nvidia on this machine (needs gcc)")
    os.environ.setdefault("HAMI_HAL_PLUGINS", "nvidia")
    hal = Hal()
    inv = hal.discover(args.backend, node_name=NODE)
    dev = next((d for d in inv.devices if d.index == args.device and d.provenance.simulated == dry), None)
    if dev is None:
        raise SystemExit(f"no real GPU with index {args.device} (found: {[d.index for d in inv.devices]})")
    tmp = Path(tempfile.mkdtemp(prefix="hami-node-gpu-"))
    Path("/tmp/vgpulock").mkdir(exist_ok=True)
    api = FakeApiServer().start()
    api.add_node({"metadata": {"name": NODE, "annotations": {}}})
    kubelet = FakeKubelet(tmp / "dp").start()
    agent = NodeAgent(hal, KubeNodeApi(host=api.url), AgentConfig(
        node_name=NODE, plugin_dir=tmp / "dp", state_root=tmp / "state", health_interval=3600,
        register_interval=3600, cleanup_interval=3600), inv)
    agent.start()
    try:
        kubelet.wait(lambda k: len(k.healthy(RESOURCE)) > 0, timeout=30)
        value = f"{dev.uuid},NVIDIA,{args.memory_mib},{args.cores}:;"
        api.add_pod({"metadata": {"name": "gpu-record", "namespace": "default", "uid": "0000-gpu-record",
                                  "annotations": {"hami.io/vgpu-node": NODE, "hami.io/bind-phase": "allocating",
                                                  "hami.io/bind-time": str(int(time.time())),
                                                  "hami.io/vgpu-devices-to-allocate": value,
                                                  "hami.io/vgpu-devices-allocated": value}},
                     "spec": {"nodeName": NODE, "containers": [{"name": "main"}]}, "status": {"phase": "Pending"}})
        ids = [i for i in kubelet.healthy(RESOURCE) if i.startswith(dev.uuid)][:1]
        (answer,) = kubelet.allocate(RESOURCE, [ids]).container_responses
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "LD_PRELOAD", "NVIDIA_"))}
        env = host_process_env(answer, base | {"PYTHONUNBUFFERED": "1"})
        if dry:  # a stand-in worker has no CUDA to intercept
            env.pop("LD_PRELOAD", None)
        native_env = base | {"CUDA_VISIBLE_DEVICES": dev.uuid, "PYTHONUNBUFFERED": "1"}

        def at_peak(pid: int) -> dict:
            per_process = nvml_process_used(dev.uuid) or {}
            now = nvml_device_used(dev.uuid)
            return {"exporter_used_bytes": _series(agent, "hami_vgpu_memory_used_bytes", "gpu-record"),
                    "nvml_process_used_bytes": per_process.get(pid), "nvml_processes": len(per_process),
                    "nvml_device_growth_bytes": None if now is None or before is None else now - before}

        before = nvml_device_used(dev.uuid)
        mem = _worker(worker, ["mem", "torch"], env, on_peak=at_peak)
        res, peak = mem["result"], mem["peak"] or {}
        limit = args.memory_mib * MIB
        used = peak.get("exporter_used_bytes")
        reserved = res.get("torch_reserved") or res["largest_allocated"]
        # the process's usage from outside: NVML per process, else (a PID namespace) the device's growth while
        # it ran; a dry run has no NVML and takes the stand-in's own figure
        outside, outside_how = peak.get("nvml_process_used_bytes"), "NVML per-process used memory"
        if not outside:
            outside, outside_how = peak.get("nvml_device_growth_bytes"), "NVML device used-memory growth"
        if not outside and dry:
            outside, outside_how = reserved, "the stand-in worker's own figure (dry run)"
        native = _worker(worker, ["matmul", str(args.seconds)], native_env)["result"]
        # The default policy lets a container run uncapped while it is alone on the GPU (work-conserving), so
        # the share alone is measured with HAMi's "force" policy, as the compute-share probe does.
        limited = _worker(worker, ["matmul", str(args.seconds)], env | {"GPU_CORE_UTILIZATION_POLICY": "force"})["result"]
        share = 100 * limited["tflops"] / native["tflops"]
        record = {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python conformance/benchmarks/node_agent_gpu_record.py " + " ".join(argv or sys.argv[1:]),
            "device": {"uuid": dev.uuid, "model": dev.model, "driver": dev.provenance.driver_version,
                       "source": dev.provenance.source, "profile": dev.provenance.profile},
            "dry_run": "simulated node and a stand-in worker: NOT a GPU result" if dry else None,
            "interposer": library_version(),
            "allocate_env": dict(answer.envs),
            "memory": {"limit_bytes": limit, "largest_allocated_bytes": res["largest_allocated"],
                       "bytes_over_limit": max(0, res["largest_allocated"] - limit),
                       "reported_total_bytes": res["reported_total"], "oom_error": res.get("oom_error", ""),
                       "torch_reserved_bytes": reserved, "exporter_used_bytes": used,
                       "process_used_bytes": outside, "process_used_from": outside_how if outside else None,
                       "nvml_process_used_bytes": peak.get("nvml_process_used_bytes"),
                       "nvml_device_growth_bytes": peak.get("nvml_device_growth_bytes"),
                       "exporter_minus_process_bytes": None if used is None or not outside else used - outside,
                       "exporter_error_percent": None if used is None or not outside
                       else 100 * abs(used - outside) / outside},
            "compute": {"cores_percent": args.cores, "policy": "GPU_CORE_UTILIZATION_POLICY=force",
                        "native_tflops": native["tflops"],
                        "limited_tflops": limited["tflops"], "share_percent": share},
        }
        record["criteria"] = {
            "zero_bytes_over_limit": record["memory"]["bytes_over_limit"] == 0,
            "share_within_5_points": abs(share - args.cores) <= 5,
            "exporter_within_1_percent": record["memory"]["exporter_error_percent"] is not None
            and record["memory"]["exporter_error_percent"] <= 1,
        }
    finally:
        agent.stop()
        kubelet.stop()
        api.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    m, c = record["memory"], record["compute"]
    args.out.with_suffix(".md").write_text("\n".join([
        f"# Node agent Allocate on a real GPU ({record['date']})"
        + (" — DRY RUN on a simulated node with a stand-in worker, not a GPU result" if dry else ""), "",
        f"Device: {dev.model} ({dev.uuid}), driver {dev.provenance.driver_version}; interposer "
        f"{record['interposer']}. Command: `{record['command']}`.", "",
        "| criterion | measured | pass |", "|---|---|---|",
        f"| 0 bytes over {args.memory_mib} MiB | {m['bytes_over_limit']} bytes over "
        f"(largest {m['largest_allocated_bytes'] / MIB:.0f} MiB) | {record['criteria']['zero_bytes_over_limit']} |",
        f"| {args.cores} ± 5 % of solo throughput | {c['share_percent']:.1f} % ({c['limited_tflops']:.1f} / "
        f"{c['native_tflops']:.1f} TFLOP/s) | {record['criteria']['share_within_5_points']} |",
        f"| exporter within 1 % of the process's usage | hami_vgpu_memory_used_bytes {m['exporter_used_bytes']} vs "
        f"{m['process_used_bytes']} ({m['process_used_from']}); torch reserved {m['torch_reserved_bytes']} | "
        f"{record['criteria']['exporter_within_1_percent']} |", "",
        "The limited matmul ran with GPU_CORE_UTILIZATION_POLICY=force (alone on the GPU the default policy does "
        "not cap: work-conserving). The interposer charges a context as NVML's growth at its creation plus a "
        "64 MiB slack (CUDA_DEVICE_CONTEXT_SLACK) for later driver growth, so the series may stand that much "
        "above the process's NVML figure.", ""]))
    print(json.dumps(record["criteria"]))
    return 0 if all(record["criteria"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
