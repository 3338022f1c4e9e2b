"""``hami nvidia``: the NVIDIA view an operator checks against nvidia-smi.

Per GPU: identity, compute capability, SMs, PCI bus, NUMA, MIG mode, health; the MIG GPU-instance
profiles NVML offers (even while MIG mode is off); the GPU-pair links with HAMi scores; and every
field NVML could not answer, with the reason. Registered through the ``hami_hal.cli`` entry points;
also runs as ``python -m hami_plugins_nvidia.cli``.
"""

from __future__ import annotations

import argparse

from rich.table import Table

from hami_hal.cli.common import add_node_options, discover
from hami_hal.cli.output import console, emit_json, skipped_lines, source_label
from hami_hal.models import NodeInventory


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("nvidia", help="NVIDIA GPUs: NVML facts, MIG profiles, links, health")
    add_node_options(p)
    p.set_defaults(func=run)


def interposer_info() -> dict:
    """Where the CUDA interposer library is and which version, as operators check before a rollout."""
    try:
        from .interposer import library_path, library_version
    except ImportError as err:
        return {"path": None, "version": None, "problem": f"interposer package missing: {err}"}
    path = library_path()
    if path is None:
        return {"path": None, "version": None, "problem": "libvgpu.so is not built (reinstall with gcc present)"}
    return {"path": str(path), "version": library_version(), "problem": None}


def render(inv: NodeInventory) -> None:
    out = console()
    lib = interposer_info()
    out.print(f"CUDA interposer: libvgpu.so {lib['version']} at {lib['path']}" if lib["path"]
              else f"CUDA interposer: {lib['problem']}")
    label = source_label(inv)
    gpus = [d for d in inv.devices if d.vendor == "nvidia"]
    table = Table(title=f"NVIDIA GPUs on {inv.node} — {label}")
    for col in ("idx", "name", "uuid", "MiB", "cc", "SMs", "PCI bus", "NUMA", "MIG mode", "driver / CUDA",
                "health"):
        table.add_column(col, overflow="fold", no_wrap=col == "uuid")
    for d in gpus:
        a = d.attributes
        table.add_row(str(d.index), d.model, d.uuid, str(d.memory_mib), str(a.get("compute_capability") or "-"),
                      str(d.compute_units or "-"), str(a.get("pci_bus_id") or "-"),
                      "unknown" if d.numa_node is None else str(d.numa_node), str(a.get("mig_mode") or "n/a"),
                      f"{a.get('driver_version')} / {a.get('cuda_driver_version')}",
                      "ok" if d.healthy else f"[red]{d.health_reason}[/]")
    out.print(table)
    for d in gpus:
        profiles = d.attributes.get("mig_profiles") or []
        if not profiles:
            continue
        mig = Table(title=f"GPU{d.index} MIG GPU-instance profiles (source: {d.attributes.get('mig_profiles_source')})")
        for col in ("profile", "id", "memory MiB", "SMs", "core %", "slices", "instances", "placements"):
            mig.add_column(col)
        for p in profiles:
            mig.add_row(p["name"], str(p["profileId"]), str(p["memoryMB"]), str(p["smCount"]), str(p["core"]),
                        str(p["sliceCount"]), str(p["instanceCount"]),
                        " ".join(f"{q['start']}+{q['size']}" for q in p["placements"]) or "-")
        out.print(mig)
    names = {d.uuid: f"GPU{d.index}" for d in gpus}
    links = [lk for lk in inv.topology.links if lk.a in names and lk.b in names]
    if links:
        topo = Table(title=f"GPU links — {label}")
        for col in ("a", "b", "link", "NVLinks", "HAMi score", "bandwidth"):
            topo.add_column(col)
        for lk in links:
            topo.add_row(names[lk.a], names[lk.b], lk.kind, str(lk.count) if lk.kind == "nvlink" else "-",
                         str(lk.score), lk.bandwidth_class)
        out.print(topo)
    elif len(gpus) == 1:
        out.print("topology: one GPU, no GPU pairs to link")
    for d in gpus:
        for field, why in (d.attributes.get("unknown") or {}).items():
            out.print(f"GPU{d.index} {field}: unknown — {why}")
    for line in skipped_lines(inv):
        out.print(line)


def run(args: argparse.Namespace) -> int:
    _, inv = discover(args)
    if args.json:
        emit_json({**inv.model_dump(mode="json", by_alias=True), "interposer": interposer_info()})
    else:
        render(inv)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (works without the entry point being installed)."""
    from hami_hal.errors import HalError

    parser = argparse.ArgumentParser(prog="hami")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["nvidia", *(argv or [])])
    try:
        return int(args.func(args) or 0)
    except HalError as err:
        console().print(f"error: {err}")
        return err.exit_code


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
