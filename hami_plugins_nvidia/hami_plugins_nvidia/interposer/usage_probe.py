"""The metrics/allocation-usage probe: do the per-container series tell each tenant's real usage?

Two tenants (processes preloaded with libvgpu.so, each with its own container state folder as the node
agent makes them, ``<root>/<podUID>_<container>``, and its own memory and SM limits) run on one GPU and
each allocates a known amount (torch when it imports, else the driver API through ctypes). While both hold
their allocation, the node agent's exporter code (``hami_hal.metrics.node_monitor``, fed by this plugin's
``hami_hal_container_usage``) is scraped as Prometheus text and each tenant's
``hami_vgpu_memory_used_bytes`` / ``hami_vgpu_memory_limit_bytes`` (labels namespace, pod, container,
device_uuid) is compared with what the tenant itself measured: the bytes it allocated, and NVML's per-process
used memory read from outside (real GPU only; the fake driver has no NVML).

The probe side imports nothing heavy at module level; ``python usage_probe.py tenant BYTES`` is the tenant.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
#: How long a tenant may take to create its context and allocate (a cold torch import included).
READY_TIMEOUT_S = 120.0
#: Bounds on what a tenant reports (one line of JSON), so a broken worker cannot flood the probe.
MAX_LINE = 4096


@dataclass(frozen=True)
class Tenant:
    """One container of the probe: its labels, limits and how much it allocates."""

    pod: str
    limit_mib: int
    sm_percent: int
    alloc_mib: int
    namespace: str = "probe"
    container: str = "main"


#: Different memory and SM limits on one device, each allocating a different known amount. Sizes of real
#: slices of a large GPU: the interposer charges a context as NVML's growth at its creation plus a fixed
#: 64 MiB slack (CUDA_DEVICE_CONTEXT_SLACK) for later driver growth, so the series stands a fixed few tens of
#: MiB above the process's NVML figure; the probe reports that difference in MiB beside the relative error.
DEFAULT_TENANTS = (Tenant("tenant-a", 10240, 30, 8192), Tenant("tenant-b", 16384, 60, 12288))


class UsageProbeError(RuntimeError):
    """A tenant did not start, or the exporter served no series for it."""


def _tenant_env(t: Tenant, folder: Path, tmp: Path, device, library: Path | None, visible: str | None,
                driver_dir: Path | None, framework: str, extra: dict[str, str] | None) -> dict[str, str]:
    """The env this plugin's container edits give the tenant's container (what the node agent's Allocate
    answers), for a process on the host: container paths become the host paths mounted there (the state
    folder is mounted at ``<hook>/vgpu``), NVIDIA_VISIBLE_DEVICES becomes CUDA_VISIBLE_DEVICES, and the
    mounted interposer becomes LD_PRELOAD."""
    from hami_hal.models import ContainerAllocation, DeviceSlice
    from hami_hal.models.isolation import host_path

    from ..config import NvidiaConfig
    from ..isolation import container_edits

    alloc = ContainerAllocation(name=t.container, index=0, state_dir=str(folder), slices=[DeviceSlice(
        vendor="nvidia", uuid=device.uuid, device_index=device.index, common_word="NVIDIA",
        memory_mib=t.limit_mib, compute_percent=t.sm_percent)])
    edits = container_edits(alloc, [device], NvidiaConfig())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD", "NVIDIA_"))}
    env.update({k: host_path(edits.mounts, v) if v.startswith("/") else v for k, v in edits.env.items()})
    preload = library or next((Path(m.host_path) for m in edits.mounts if m.container_path.endswith("libvgpu.so")), None)
    if preload is None:
        raise UsageProbeError("the container edits mount no libvgpu.so")
    env.update(PYTHONUNBUFFERED="1", LD_PRELOAD=str(preload),
               CUDA_VISIBLE_DEVICES=visible or edits.env.get("NVIDIA_VISIBLE_DEVICES", device.uuid),
               HAMI_NODE_BOARD=str(tmp / "board"), USAGE_PROBE_FRAMEWORK=framework)
    if driver_dir is not None:
        env["LD_LIBRARY_PATH"] = str(driver_dir) + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env.update(extra or {})
    return env


def _read_ready(proc: subprocess.Popen[str], err_file, deadline: float) -> dict:
    while time.monotonic() < deadline:
        line = proc.stdout.readline(MAX_LINE) if proc.stdout else ""
        if not line:
            break
        if line.startswith("READY "):
            return json.loads(line[6:])
    proc.kill()
    code = proc.wait()
    err_file.seek(0)
    raise UsageProbeError(f"tenant exited {code} before it held its allocation: {err_file.read()[-1500:].strip()}")


class _PluginUsage:
    """The two calls the exporter makes of a Hal, answered by this plugin's hook implementations (the probe
    runs inside the plugin, without a discovered Hal)."""

    def container_usage(self, vendor: str, state_dir: Path, device_uuids: list[str]) -> list:
        from ..usage import container_samples

        return container_samples(state_dir, device_uuids)

    def device_metrics(self, device) -> list:
        return []


def scrape_exporter(sources: list) -> str:
    """The node monitor's /metrics text for ``sources`` (ContainerSource), as the agent serves it."""
    from prometheus_client import CollectorRegistry, generate_latest

    from hami_hal.metrics.node_monitor import NodeMonitorCollector

    reg = CollectorRegistry()
    reg.register(NodeMonitorCollector(_PluginUsage(), "probe-node", devices=list, containers=lambda: sources))
    return generate_latest(reg).decode()


def series_by_pod(text: str, name: str) -> dict[tuple[str, str, str, str], float]:
    """``name``'s samples in a scrape, keyed by (namespace, pod, container, device_uuid)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, str, str, str], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name:
                key = (s.labels.get("namespace", ""), s.labels.get("pod", ""), s.labels.get("container", ""),
                       s.labels.get("device_uuid", ""))
                out[key] = out.get(key, 0.0) + s.value
    return out


def _nvml(device_uuid: str, read):
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        return read(pynvml, pynvml.nvmlDeviceGetHandleByUUID(device_uuid))
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()


def nvml_process_used(device_uuid: str) -> dict[int, int] | None:
    """Used memory per process on the device as NVML reports it from outside; None without NVML. (In a
    container NVML may name host PIDs, which then match no tenant: see ``nvml_device_used``.)"""
    return _nvml(device_uuid, lambda nv, h: {int(p.pid): int(p.usedGpuMemory)
                                             for p in nv.nvmlDeviceGetComputeRunningProcesses(h)
                                             if p.usedGpuMemory is not None})


def nvml_device_used(device_uuid: str) -> int | None:
    """The device's used memory as NVML reports it; the probe reads it before and after each tenant starts."""
    return _nvml(device_uuid, lambda nv, h: int(nv.nvmlDeviceGetMemoryInfo(h).used))


def measure_allocation_usage(device, *, tenants: tuple[Tenant, ...] = DEFAULT_TENANTS,
                             library: Path | None = None, driver_dir: Path | None = None,
                             visible_device: str | None = None, framework: str = "auto",
                             outside=nvml_process_used, device_used=nvml_device_used,
                             extra_env: dict[str, str] | None = None) -> dict:
    """Run ``tenants`` together on ``device`` (a discovered Device) and compare each one's exporter series with
    its own usage. Each tenant gets the env this plugin's container edits give a container with its limits.

    ``library`` replaces the packaged libvgpu.so (tests); ``driver_dir`` puts a driver library (the tests'
    fake libcuda) first on the tenants' library path; ``visible_device`` is their CUDA_VISIBLE_DEVICES
    (default: the edits' NVIDIA_VISIBLE_DEVICES, the UUID); ``outside(uuid)`` reads per-process
    usage from outside the tenants ({pid: bytes}, None when it cannot). Tenants start one after the other,
    and ``device_used(uuid)`` (the whole device's used memory) is read before the first and after each one
    holds its allocation: the growth is a second outside view of each tenant that needs no PID match.
    """
    from hami_hal.metrics.node_monitor import UUID_CHARS, ContainerSource

    from . import library_path, library_version

    device_uuid = device.uuid
    lib = library or library_path()
    if lib is None:
        raise UsageProbeError("libvgpu.so is not built: reinstall hami-plugins-nvidia on a machine with gcc")
    with tempfile.TemporaryDirectory(prefix="hami-usage-probe-") as tmp_s:
        tmp = Path(tmp_s)
        root = tmp / "containers"
        procs: list[subprocess.Popen[str]] = []
        # a file, not a pipe: a chatty stderr (the interposer's log) cannot block a tenant
        errs = [tempfile.TemporaryFile(mode="w+") for _ in tenants]
        sources, ready, deltas = [], [], []
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            before = device_used(device_uuid) if device_used else None
            for i, t in enumerate(tenants):
                uid = f"0000-usage-probe-{i}"
                folder = root / f"{uid}_{t.container}"
                folder.mkdir(parents=True)
                env = _tenant_env(t, folder, tmp, device, library, visible_device, driver_dir, framework, extra_env)
                procs.append(subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "tenant", str(t.alloc_mib * MIB)], env=env,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errs[i], text=True))
                sources.append(ContainerSource(t.namespace, t.pod, t.container, folder, {"nvidia": [device_uuid]}))
                ready.append(_read_ready(procs[-1], errs[i], deadline))
                after = device_used(device_uuid) if before is not None else None
                deltas.append(None if after is None or before is None else after - before)
                before = after
            text = scrape_exporter(sources)
            per_process = outside(device_uuid) if outside else None
        finally:
            for p in procs:
                if p.poll() is None and p.stdin:
                    try:
                        p.stdin.write("\n")
                        p.stdin.flush()
                    except OSError:
                        pass
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            for f in errs:
                f.close()
    used = series_by_pod(text, "hami_vgpu_memory_used_bytes")
    limit = series_by_pod(text, "hami_vgpu_memory_limit_bytes")
    rows = []
    for t, r, delta in zip(tenants, ready, deltas, strict=True):
        key = (t.namespace, t.pod, t.container, device_uuid[:UUID_CHARS])
        nvml = (per_process or {}).get(int(r["pid"]))
        rows.append({
            "pod": t.pod, "limit_mib": t.limit_mib, "sm_percent": t.sm_percent, "pid": r["pid"],
            "framework": r["framework"], "allocated_bytes": r["allocated"],
            "framework_reserved_bytes": r.get("reserved"), "driver_used_bytes": r.get("driver_used"),
            "series_used_bytes": used.get(key), "series_limit_bytes": limit.get(key),
            "nvml_process_used_bytes": nvml, "nvml_device_growth_bytes": delta,
        })
    return {
        "device_uuid": device_uuid,
        "library_version": library_version(lib),
        "outside_view": "nvml" if per_process is not None or any(d is not None for d in deltas) else None,
        "tenants": rows,
        "other_pods_in_scrape": sorted({k[1] for k in used} - {t.pod for t in tenants}),
    }


# ---- the tenant (runs as a script in its own process, under LD_PRELOAD) ----------------------------------


def _tenant_torch(n: int) -> dict:
    import torch

    x = torch.empty(n, dtype=torch.uint8, device="cuda")
    x.fill_(1)
    torch.cuda.synchronize()
    return {"framework": "torch", "allocated": n, "reserved": int(torch.cuda.memory_reserved()), "_keep": x}


def _tenant_driver(n: int) -> dict:
    import ctypes

    cu = ctypes.CDLL("libcuda.so.1")
    ctx, ptr = ctypes.c_void_p(), ctypes.c_uint64()
    for call, args in (("cuInit", (0,)), ("cuDevicePrimaryCtxRetain", (ctypes.byref(ctx), 0)),
                       ("cuCtxSetCurrent", (ctx,)), ("cuMemAlloc_v2", (ctypes.byref(ptr), ctypes.c_size_t(n)))):
        rc = getattr(cu, call)(*args)
        if rc:
            raise SystemExit(f"{call} returned CUresult {rc}")
    out = {"framework": "driver", "allocated": n}
    fake_used = getattr(cu, "fake_used", None)
    if fake_used is not None:  # the tests' fake driver says what it really handed out
        fake_used.restype = ctypes.c_uint64
        out["driver_used"] = int(fake_used(0))
    return out


def tenant_main(n: int) -> int:
    kind = os.environ.get("USAGE_PROBE_FRAMEWORK", "auto")
    if kind == "torch" or kind == "auto":
        try:
            import torch  # noqa: F401
        except ImportError:
            if kind == "torch":
                raise
            kind = "driver"
        else:
            kind = "torch"
    held = _tenant_torch(n) if kind == "torch" else _tenant_driver(n)
    report = {k: v for k, v in held.items() if not k.startswith("_")} | {"pid": os.getpid()}
    print("READY " + json.dumps(report), flush=True)
    sys.stdin.readline()  # hold the allocation until the probe has scraped
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "tenant" or not sys.argv[2].isdigit():
        raise SystemExit("usage: usage_probe.py tenant BYTES")
    sys.exit(tenant_main(int(sys.argv[2])))
