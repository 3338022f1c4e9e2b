#!/usr/bin/env python3
"""Run the NVIDIA plugin on this machine's GPUs and compare every field with nvidia-smi.

Usage (on a GPU machine, from the repo root):

    PYTHONPATH=.:hami_plugins_nvidia python3 hami_plugins_nvidia/scripts/verify_nvidia.py --out OUT

It runs the plugin's discovery, topology, health, metrics and partition hooks through the core
(``hami_hal.manager.Hal``, backend ``real``), starts a helper process that holds GPU memory (so the
per-process metrics have something to find), reads ``nvidia-smi -q -x`` / ``-q`` / ``topo -m`` /
``nvlink -s`` / ``mig -lgip`` / ``--query-gpu`` / ``--query-compute-apps``, and writes into OUT:

- ``report.json``: the plugin's answers, the raw tool outputs' parsed fields, the comparison rows;
- ``comparison.md``: one row per field: plugin value, nvidia-smi value, match / explained / MISMATCH;
- ``nvidia-smi-q.txt``, ``nvidia-smi-q.xml``, ``tools.txt`` (the other nvidia-smi outputs),
  ``hami-devices.txt`` (``hami devices --backend real`` as an operator sees it).

It never changes GPU state: no MIG mode change, no clocks, no reset. ``--sim-node NAME`` runs the same
plugin path on a simulated node without nvidia-smi (to test the script without a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

HOLD_MIB = 2048
ONE_GPU_POD = """apiVersion: v1
kind: Pod
metadata: {name: one-gpu-pod, namespace: default}
spec:
  containers:
  - name: main
    image: cuda
    resources:
      limits: {nvidia.com/gpu: 1, nvidia.com/gpumem: 10240, nvidia.com/gpucores: 30}
"""
HOLDER = """
import sys, time, torch
x = torch.empty({mib} * 1024 * 1024, dtype=torch.uint8, device='cuda:{dev}')
x.fill_(1); torch.cuda.synchronize()
print(torch.cuda.get_device_properties({dev}).multi_processor_count, flush=True)
open(sys.argv[1], 'w').write('ready')
time.sleep(float(sys.argv[2]))
"""


def sh(cmd: list[str], timeout: int = 60, env: dict | None = None) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"<{cmd[0]} failed: {err}>"
    return res.stdout + (("\n[stderr]\n" + res.stderr) if res.stderr.strip() else "")


# ---------------------------------------------------------------------------------------------
# nvidia-smi parsing
# ---------------------------------------------------------------------------------------------


def _num(text: str | None) -> float | None:
    if text is None:
        return None
    m = re.search(r"-?\d+(\.\d+)?", text)
    return float(m.group(0)) if m else None


def smi_gpus(xml_text: str) -> tuple[dict, list[dict]]:
    """System fields and one dict per GPU from ``nvidia-smi -q -x``."""
    root = ET.fromstring(xml_text)

    def t(node, path):
        el = node.find(path)
        return el.text.strip() if el is not None and el.text else None

    system = {"driver_version": t(root, "driver_version"), "cuda_version": t(root, "cuda_version")}
    gpus = []
    for g in root.findall("gpu"):
        # nvmlDeviceGetPowerUsage is a 1 s average on Ampere and newer: compare with nvidia-smi's average.
        power = t(g, "gpu_power_readings/average_power_draw") or t(g, "gpu_power_readings/power_draw") \
            or t(g, "power_readings/power_draw")
        limit = t(g, "gpu_power_readings/current_power_limit") or t(g, "power_readings/enforced_power_limit")
        gpus.append({
            "bus_id": g.get("id"),
            "uuid": t(g, "uuid"),
            "product_name": t(g, "product_name"),
            "minor_number": t(g, "minor_number"),
            "pci_bus_id": t(g, "pci/pci_bus_id"),
            "memory_total": t(g, "fb_memory_usage/total"),
            "memory_reserved": t(g, "fb_memory_usage/reserved"),
            "memory_used": t(g, "fb_memory_usage/used"),
            "mig_current": t(g, "mig_mode/current_mig"),
            "mig_pending": t(g, "mig_mode/pending_mig"),
            "gpu_util": t(g, "utilization/gpu_util"),
            "memory_util": t(g, "utilization/memory_util"),
            "temperature": t(g, "temperature/gpu_temp"),
            "power_draw": power,
            "power_limit": limit,
            "sm_clock": t(g, "clocks/sm_clock"),
            "ecc_volatile_uncorrectable": _ecc_uncorrectable(g),
            "remap_failure": t(g, "remapped_rows/remapped_row_failure")
            or t(g, "remapped_rows/remapping_failure_occurred"),
            "remap_pending": t(g, "remapped_rows/remapped_row_pending") or t(g, "remapped_rows/pending"),
            "numa_node": t(g, "numa_node") or t(g, "pci/numa_node"),
            "processes": [
                {"pid": t(p, "pid"), "used_memory": t(p, "used_memory")}
                for p in g.findall("processes/process_info")
            ],
        })
    return system, gpus


def _ecc_uncorrectable(g) -> str | None:
    """Volatile uncorrectable ECC errors, summed over DRAM and SRAM as NVML's total counts them."""
    keys = ("dram_uncorrectable", "sram_uncorrectable_parity", "sram_uncorrectable_secded", "sram_uncorrectable",
            "double_bit/total")
    vals = [g.find(f"ecc_errors/volatile/{k}") for k in keys]
    nums = [_num(v.text) for v in vals if v is not None and v.text]
    nums = [n for n in nums if n is not None]
    return str(int(sum(nums))) if nums else None


def smi_topology(text: str) -> dict[tuple[int, int], str]:
    """``nvidia-smi topo -m`` cells between GPUs: (i, j) -> NV18 / SYS / NODE / PHB / PXB / PIX."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = next((ln for ln in lines if ln.lstrip().startswith("GPU0")), None)
    if header is None:
        return {}
    cols = header.split()
    gpu_cols = [c for c in cols if re.fullmatch(r"GPU\d+", c)]
    out = {}
    for ln in lines:
        parts = ln.split()
        if not parts or not re.fullmatch(r"GPU\d+", parts[0]):
            continue
        i = int(parts[0][3:])
        for k, col in enumerate(gpu_cols):
            if k + 1 < len(parts):
                out[(i, int(col[3:]))] = re.sub(r"\x1b\[[0-9;]*m", "", parts[k + 1])
    return out


SMI_TOPO_KIND = {"SYS": "cross-cpu", "NODE": "same-cpu", "PHB": "host-bridge", "PXB": "multi-switch",
                 "PIX": "single-switch"}


def smi_lgip(text: str) -> list[dict]:
    """Rows of ``nvidia-smi mig -lgip`` (only printed while MIG mode is enabled)."""
    rows = []
    for m in re.finditer(r"\|\s+(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)/(\d+)\s+([\d.]+)\s+\S+\s+(\d+)", text):
        rows.append({"gpu": int(m[1]), "name": m[2], "id": int(m[3]), "instances": int(m[5]),
                     "memory_gib": float(m[6]), "sms": int(m[7])})
    return rows


# ---------------------------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------------------------


class Rows:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, gpu: str, field: str, ours, theirs, verdict: str, note: str = "") -> None:
        self.rows.append({"gpu": gpu, "field": field, "plugin": ours, "nvidia_smi": theirs, "verdict": verdict,
                          "note": note})

    def exact(self, gpu: str, field: str, ours, theirs, note: str = "") -> None:
        self.add(gpu, field, ours, theirs, "match" if str(ours) == str(theirs) else "MISMATCH", note)

    def near(self, gpu: str, field: str, ours, theirs, tol: float, note: str = "") -> None:
        if ours is None or theirs is None:
            self.add(gpu, field, ours, theirs, "explained" if note else "MISMATCH", note)
            return
        ok = abs(float(ours) - float(theirs)) <= tol
        self.add(gpu, field, ours, theirs, "match" if ok else "MISMATCH",
                 (note + "; " if note else "") + f"tolerance ±{tol:g} (read at different instants)")


def compare(inv: dict, smi_sys: dict, smi: list[dict], topo: dict, extras: dict, rows: Rows) -> None:
    devices = inv["devices"]
    by_uuid = {g["uuid"]: g for g in smi}
    rows.exact("node", "GPU count", len(devices), len(smi))
    for dev in devices:
        g = by_uuid.get(dev["uuid"])
        tag = f"GPU{dev['index']}"
        if g is None:
            rows.add(tag, "uuid", dev["uuid"], None, "MISMATCH", "nvidia-smi does not list this UUID")
            continue
        a = dev["attributes"]
        m = dev["metrics"]
        rows.exact(tag, "uuid", dev["uuid"], g["uuid"])
        rows.exact(tag, "product name", dev["model"], g["product_name"])
        rows.exact(tag, "HAMi type", dev["hami_type"], f"NVIDIA-{g['product_name']}",
                   "HAMi prefixes the NVML name with NVIDIA- (hami-compat.md §4.2)")
        rows.exact(tag, "memory total MiB", dev["memory_mib"], int(_num(g["memory_total"]) or -1))
        rows.exact(tag, "PCI bus id", a.get("pci_bus_id"), g["pci_bus_id"])
        rows.exact(tag, "minor number", a.get("minor_number"), g["minor_number"])
        rows.exact(tag, "driver version", a.get("driver_version"), smi_sys["driver_version"])
        rows.exact(tag, "CUDA driver version", a.get("cuda_driver_version"), smi_sys["cuda_version"])
        cap = extras["query"].get(dev["uuid"], {}).get("compute_cap")
        rows.exact(tag, "compute capability", a.get("compute_capability"), cap,
                   "nvidia-smi --query-gpu=compute_cap")
        sms = extras["cuda_sm_count"].get(str(dev["index"]))
        rows.add(tag, "SM count", dev["compute_units"], sms,
                 "match" if sms is not None and int(sms) == dev["compute_units"] else
                 ("explained" if sms is None else "MISMATCH"),
                 "nvidia-smi has no SM count; compared with CUDA's multi_processor_count (torch); ours is "
                 "NVML cores / cores-per-SM")
        mig_smi = (g["mig_current"] or "N/A").lower()
        ours_mig = a.get("mig_mode") or "n/a"
        rows.add(tag, "MIG mode", ours_mig, f"{g['mig_current']} (pending {g['mig_pending']})",
                 "match" if ours_mig.split(" ")[0] == mig_smi or (ours_mig == "n/a" and mig_smi == "n/a")
                 else "MISMATCH")
        numa_smi = g["numa_node"] or extras["topo_numa"].get(dev["index"])
        ours_numa = dev["numa_node"]
        unknown = a.get("unknown", {}).get("numa_node")
        if ours_numa is None and (numa_smi in (None, "N/A", "")):
            rows.add(tag, "NUMA node", f"unknown ({unknown})", numa_smi, "explained",
                     "NVML does not report a NUMA node here; the plugin reports unknown instead of failing")
        elif ours_numa is None and unknown and "says -1" in unknown:
            rows.add(tag, "NUMA node", f"unknown ({unknown})", f"topo -m NUMA Affinity {numa_smi}", "explained",
                     "no per-device NUMA node exists here: NVML answers Not Supported and the kernel gives the "
                     "GPU's PCI device NUMA node -1 (none); nvidia-smi's NUMA Affinity column is not a device "
                     "field but the NUMA node of the CPUs in its CPU Affinity column. The plugin reports "
                     "unknown rather than guess")
        else:
            rows.exact(tag, "NUMA node", ours_numa, numa_smi)
        profiles = a.get("mig_profiles") or []
        lgip = [r for r in extras["lgip"] if r["gpu"] == dev["index"]]
        if lgip:
            ours = sorted((p["name"], p["profileId"], p["instanceCount"], p["smCount"]) for p in profiles)
            theirs = sorted((r["name"], r["id"], r["instances"], r["sms"]) for r in lgip)
            rows.exact(tag, "MIG profiles (name, id, instances, SMs)", ours, theirs)
        else:
            rows.add(tag, "MIG profiles", f"{len(profiles)} from {a.get('mig_profiles_source')}: "
                     + ", ".join(p["name"] for p in profiles), "nvidia-smi mig -lgip lists none",
                     "explained", "nvidia-smi lists GPU-instance profiles only while MIG mode is enabled; "
                     "NVML answered the profile queries directly (source shown)")
        ours_used = (m.get("memory_used") or 0) / 2**20
        smi_used, smi_res = _num(g["memory_used"]) or 0, _num(g["memory_reserved"]) or 0
        if abs(ours_used - smi_used) <= 64:
            rows.add(tag, "memory used MiB", round(ours_used), smi_used, "match",
                     "NVML memory info v2 (reserved memory apart, as nvidia-smi); tolerance ±64 MiB")
        else:
            rows.add(tag, "memory used MiB", round(ours_used), f"{smi_used} (+{smi_res} reserved)",
                     "explained" if abs(ours_used - smi_used - smi_res) <= 64 else "MISMATCH",
                     "NVML memory info v1 counts driver-reserved memory as used; nvidia-smi shows it apart")
        rows.near(tag, "GPU utilization %", None if m.get("utilization") is None else m["utilization"] * 100,
                  _num(g["gpu_util"]), 10)
        rows.near(tag, "temperature C", m.get("temperature"), _num(g["temperature"]), 3)
        rows.near(tag, "power W", m.get("power"), _num(g["power_draw"]), max(15, 0.1 * (_num(g["power_draw"]) or 0)))
        rows.near(tag, "power limit W", m.get("power_limit"), _num(g["power_limit"]), 1)
        rows.near(tag, "SM clock MHz", None if m.get("sm_clock") is None else m["sm_clock"] / 1e6,
                  _num(g["sm_clock"]), 150, "the SM clock moves with load between the two reads")
        ecc = _num(g["ecc_volatile_uncorrectable"])
        healthy_smi = (ecc in (None, 0.0)) and (g["remap_failure"] or "No") == "No"
        rows.add(tag, "health", f"{'healthy' if dev['health']['healthy'] else 'UNHEALTHY'}: "
                 f"{dev['health']['reason'] or 'no XID/ECC/remap fault'}; events {dev['health']['events']}",
                 f"volatile uncorrectable ECC {g['ecc_volatile_uncorrectable']}, remapped-row failure "
                 f"{g['remap_failure']}, pending {g['remap_pending']}",
                 "match" if dev["health"]["healthy"] == healthy_smi else "MISMATCH",
                 "healthy = no fatal XID, no volatile uncorrectable ECC error, no failed row remap")
        smi_pids = {p["pid"]: _num(p["used_memory"]) for p in g["processes"]}
        ours_pids = {s["labels"]["pid"]: s["value"] / 2**20 for s in dev["process_metrics"]}
        if not smi_pids and not ours_pids:
            rows.add(tag, "per-process memory", {}, {}, "match", "no compute process on the GPU")
        else:
            same = set(smi_pids) == set(ours_pids) and all(
                abs((ours_pids[p] or 0) - (smi_pids[p] or 0)) <= 2 for p in smi_pids)
            rows.add(tag, "per-process memory MiB", ours_pids, smi_pids, "match" if same else "MISMATCH",
                     f"a helper process holds {HOLD_MIB} MiB on GPU0 during the read")
    uuids = {d["uuid"]: d["index"] for d in devices}
    for link in inv["topology"]["links"]:
        i, j = uuids[link["a"]], uuids[link["b"]]
        cell = topo.get((i, j))
        if cell is None:
            rows.add(f"GPU{i}-GPU{j}", "link", link, None, "MISMATCH", "nvidia-smi topo -m has no cell")
            continue
        if cell.startswith("NV"):
            want = ("nvlink", int(cell[2:]))
        else:
            want = (SMI_TOPO_KIND.get(cell, cell), 1)
        rows.add(f"GPU{i}-GPU{j}", "link (kind, count) / HAMi score", f"{link['kind']} x{link['count']} "
                 f"(score {link['score']})", cell,
                 "match" if (link["kind"], link["count"]) == want else "MISMATCH",
                 "nvidia-smi topo -m cell; NV<n> = n NVLinks")


# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------


def plugin_view(backend: str, sim_node: str | None) -> tuple[dict, float]:
    from hami_hal.manager import Hal
    from hami_plugins_nvidia import ports

    hal = Hal(entrypoints=False, modules=["hami_plugins_nvidia.plugin"])
    t0 = time.perf_counter()
    inv = hal.discover(backend=backend, sim_node=sim_node)
    took = time.perf_counter() - t0
    out = json.loads(inv.model_dump_json(by_alias=True))
    scores = {(lk.a, lk.b): lk.score for lk in inv.topology.links}
    for lk in out["topology"]["links"]:
        lk["score"] = scores[(lk["a"], lk["b"])]
    for dev, d in zip(out["devices"], inv.devices, strict=True):
        dev["metrics"] = {s.name: s.value for s in hal.device_metrics(d)}
        dev["metric_samples"] = [s.model_dump() for s in hal.device_metrics(d)]
        dev["process_metrics"] = [s.model_dump() for s in hal.allocation_metrics(d)]
        h = hal.health(d)
        dev["health"] = h.model_dump() if h else {"healthy": d.healthy, "reason": d.health_reason, "events": []}
        dev["partition_model"] = hal.partition_model(d).model_dump(mode="json")
        probe_slice = None
        if d.attributes.get("mig_profiles"):
            from hami_hal.models import DeviceSlice, Placement
            prof = d.attributes["mig_profiles"][0]
            probe_slice = DeviceSlice(vendor="nvidia", uuid=d.uuid, device_index=d.index, common_word="NVIDIA",
                                      memory_mib=prof["memoryMB"], compute_percent=prof["core"],
                                      template=prof["name"], placement=Placement(**prof["placements"][0]))
        # Only ask for a MIG instance where the plugin must refuse (MIG off) or on a simulated GPU:
        # on a real GPU with MIG on it would create one, and this script changes no GPU state.
        if probe_slice is not None and (backend == "sim" or d.mode != "mig"):
            try:
                dev["mig_create_attempt"] = {"result": hal.create_partition(d, probe_slice)}
            except Exception as err:  # noqa: BLE001 - the record keeps the one-line reason
                dev["mig_create_attempt"] = {"refused": str(err)}
    port = ports.port_for(hal.context("nvidia"))
    raw: dict = {}
    for d in inv.devices:
        try:
            ends = port.nvlinks(d.index)
            raw[f"GPU{d.index} nvlinks"] = [f"link {e.link} -> {e.remote_type} {e.remote_bus_id}" for e in ends]
        except Exception as err:  # noqa: BLE001 - recorded, not fatal
            raw[f"GPU{d.index} nvlinks"] = f"{err}"
        for o in inv.devices:
            if o.index > d.index:
                for name, fn in (("p2p_nvlink", port.p2p_nvlink), ("common_ancestor", port.common_ancestor)):
                    try:
                        raw[f"GPU{d.index}-GPU{o.index} {name}"] = fn(d.index, o.index)
                    except Exception as err:  # noqa: BLE001
                        raw[f"GPU{d.index}-GPU{o.index} {name}"] = f"{err}"
    out["nvml_links_raw"] = raw
    try:
        port.poll_xid_events()
        out["xid_events"] = "supported (registered for nvmlEventTypeXidCriticalError)"
    except Exception as err:  # noqa: BLE001
        out["xid_events"] = f"not available: {err}"
    return out, took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sim-node", default=None, help="run on a simulated node instead (no nvidia-smi)")
    ap.add_argument("--recompare", action="store_true",
                    help="redo only the comparison from OUT/report.json and OUT/nvidia-smi-q.xml")
    args = ap.parse_args()
    if args.recompare:
        report = json.loads((args.out / "report.json").read_text())
        run_comparison(report, (args.out / "nvidia-smi-q.xml").read_text(), args.out)
        (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str))
        return summary(report)
    args.out.mkdir(parents=True, exist_ok=True)
    real = args.sim_node is None
    report: dict = {"command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    holder = None
    extras: dict = {"cuda_sm_count": {}, "query": {}, "lgip": [], "topo_numa": {}}
    if real and shutil.which("nvidia-smi"):
        ready = Path(tempfile.mkdtemp()) / "holder-ready"
        try:
            holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(mib=HOLD_MIB, dev=0), str(ready), "120"],
                                      stdout=subprocess.PIPE, text=True)
            line = holder.stdout.readline().strip() if holder.stdout else ""
            if line.isdigit():
                extras["cuda_sm_count"]["0"] = int(line)
            for _ in range(100):
                if ready.exists():
                    break
                time.sleep(0.1)
            report["holder"] = {"pid": holder.pid, "mib": HOLD_MIB, "cuda_sm_count_gpu0": line}
        except OSError as err:
            report["holder"] = {"error": str(err)}
        count_out = sh(["nvidia-smi", "-L"])
        for k in range(1, len(re.findall(r"^GPU \d+", count_out, re.M))):
            got = sh([sys.executable, "-c",
                      f"import torch;print(torch.cuda.get_device_properties({k}).multi_processor_count)"])
            if got.split() and got.split()[0].isdigit():
                extras["cuda_sm_count"][str(k)] = int(got.split()[0])
    try:
        inv, took = plugin_view("real" if real else "sim", args.sim_node)
    except Exception:  # noqa: BLE001 - keep going so the nvidia-smi side is still recorded
        import traceback

        report["plugin_error"] = traceback.format_exc()
        print(report["plugin_error"])
        inv, took = {"devices": [], "topology": {"links": []}}, float("nan")
    report["plugin"] = inv
    report["discover_seconds"] = round(took, 4)
    if real and shutil.which("nvidia-smi"):
        xml_text = sh(["nvidia-smi", "-q", "-x"])
        (args.out / "nvidia-smi-q.xml").write_text(xml_text)
        (args.out / "nvidia-smi-q.txt").write_text(sh(["nvidia-smi", "-q"]))
        tools = {
            "nvidia-smi -L": sh(["nvidia-smi", "-L"]),
            "nvidia-smi topo -m": sh(["nvidia-smi", "topo", "-m"]),
            "nvidia-smi nvlink -s": sh(["nvidia-smi", "nvlink", "-s"]),
            "nvidia-smi mig -lgip": sh(["nvidia-smi", "mig", "-lgip"]),
            "nvidia-smi --query-gpu": sh(["nvidia-smi", "--query-gpu=uuid,compute_cap,name,pci.bus_id",
                                          "--format=csv,noheader"]),
            "nvidia-smi --query-compute-apps": sh(["nvidia-smi", "--query-compute-apps=pid,gpu_uuid,used_memory",
                                                   "--format=csv,noheader"]),
        }
        (args.out / "tools.txt").write_text("".join(f"$ {k}\n{v}\n" for k, v in tools.items()))
        report["tools"] = tools
        report["cuda_sm_count"] = extras["cuda_sm_count"]
        try:
            run_comparison(report, xml_text, args.out)
        except Exception:  # noqa: BLE001 - keep the raw data; --recompare can redo this part
            import traceback

            report["comparison_error"] = traceback.format_exc()
        env = dict(os.environ)
        if not any(ep.name == "nvidia" for ep in entry_points(group="hami_hal.plugins")):
            env["HAMI_HAL_PLUGIN_MODULES"] = "hami_plugins_nvidia.plugin"
        cli = [sys.executable, "-c", "from hami_hal.cli.main import main; raise SystemExit(main())"]
        hd = sh([*cli, "devices", "--backend", "real"], env=env)
        hd_json = sh([*cli, "devices", "--backend", "real", "--json"], env=env)
        nv = sh([sys.executable, "-m", "hami_plugins_nvidia.cli", "--backend", "real"], env=env)
        pod = Path(tempfile.mkdtemp()) / "one-gpu-pod.yaml"
        pod.write_text(ONE_GPU_POD)
        alloc = sh([*cli, "allocate", "--backend", "real", str(pod)], env=env)
        (args.out / "hami-devices.txt").write_text(f"$ hami devices --backend real\n{hd}\n"
                                                   f"$ hami nvidia --backend real\n{nv}\n"
                                                   f"$ hami allocate --backend real one-gpu-pod.yaml\n"
                                                   f"{ONE_GPU_POD}\n{alloc}\n"
                                                   f"$ hami devices --backend real --json\n{hd_json}\n")
    if holder is not None:
        holder.kill()
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return summary(report)


def summary(report: dict) -> int:
    rows = report.get("comparison", [])
    bad = [r for r in rows if r["verdict"] == "MISMATCH"]
    print(f"devices: {len(report['plugin']['devices'])}, discover {report.get('discover_seconds')}s, "
          f"rows {len(rows)}, mismatches {len(bad)}")
    for r in bad:
        print("MISMATCH", r)
    if report.get("comparison_error"):
        print(report["comparison_error"])
    return 0


def run_comparison(report: dict, xml_text: str, out: Path) -> None:
    """Parse the saved nvidia-smi outputs and compare them with the plugin's answers."""
    tools = report["tools"]
    extras: dict = {"cuda_sm_count": report.get("cuda_sm_count", {}), "query": {}, "topo_numa": {}}
    for ln in tools["nvidia-smi --query-gpu"].splitlines():
        parts = [p.strip() for p in ln.split(",")]
        if len(parts) >= 2 and parts[0].startswith("GPU-"):
            extras["query"][parts[0]] = {"compute_cap": parts[1]}
    extras["lgip"] = smi_lgip(tools["nvidia-smi mig -lgip"])
    topo = smi_topology(tools["nvidia-smi topo -m"])
    for ln in tools["nvidia-smi topo -m"].splitlines():
        parts = re.sub(r"\x1b\[[0-9;]*m", "", ln).split()
        if parts and re.fullmatch(r"GPU\d+", parts[0]) and len(parts) >= 3:
            extras["topo_numa"][int(parts[0][3:])] = parts[-2]  # "NUMA Affinity" (then "GPU NUMA ID")
    smi_sys, smi = smi_gpus(xml_text)
    rows = Rows()
    compare(report["plugin"], smi_sys, smi, topo, extras, rows)
    report["nvidia_smi"] = {"system": smi_sys, "gpus": smi, "lgip": extras["lgip"],
                            "topology": {f"{a}-{b}": v for (a, b), v in topo.items()}}
    report["comparison"] = rows.rows
    report.pop("comparison_error", None)
    (out / "comparison.md").write_text(render(rows.rows))


def render(rows: list[dict]) -> str:
    lines = ["| GPU | field | plugin | nvidia-smi | verdict | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = [str(r[k]).replace("|", "\\|").replace("\n", " ") for k in
                 ("gpu", "field", "plugin", "nvidia_smi", "verdict", "note")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
