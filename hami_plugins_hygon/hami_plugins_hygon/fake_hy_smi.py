"""A fake ``hy-smi`` built from a simulated node: prints what the real tool prints (the formats in
:mod:`.hy_smi_parse`) and keeps vDCU state with the DMI's limits (remaining CUs and memory per DCU, a
pool of vDCU indexes), so the plugin runs the same parsing and control code on simulated DCUs.

Profile ``vendor_data``: ``series`` (Card Series text; empty on K100), ``device_id``, ``hbm_used_mib``,
``temperature_c``, ``power_w``, ``power_cap_w``. Node links of kind ``xgmi`` print as ``XGMI``.
A fault ``lost`` drops the DCU from the summary table (the card stopped answering).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hami_hal.errors import ProfileError
from hami_hal.simulation import SimulatedNode
from hami_hal.vendor_tool import ToolError

MIB = 1 << 20
#: vDCU index pool per node (HAMi's dcu plugin: 200).
MAX_VDEVICES = 200
_BAR = "=" * 86


@dataclass
class _VDev:
    index: int
    device: int
    cus: int
    mib: int


@dataclass
class FakeHySmi:
    node: SimulatedNode
    source = "simulated"
    vdevs: list[_VDev] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Profiles are user input (``HAMI_HAL_PROFILE_PATH``): check what this fake reads, one line each."""
        for d in self.node.devices:
            vd = d.spec.vendor_data
            used = vd.get("hbm_used_mib", 0)
            if isinstance(used, bool) or not isinstance(used, int) or not 0 <= used <= d.spec.memory_mib:
                raise ProfileError(f"device profile {d.profile!r}: vendor_data.hbm_used_mib {used!r} must be an "
                                   f"integer between 0 and {d.spec.memory_mib}")
            for key in ("series", "device_id"):
                v = vd.get(key, "")
                if not isinstance(v, str) or len(v) > 64 or any(c in v for c in "\n\r:"):
                    raise ProfileError(f"device profile {d.profile!r}: vendor_data.{key} {v!r} must be a short "
                                       "one-line string without ':'")

    def _dev(self, index: int):
        for d in self.node.devices:
            if d.index == index:
                return d
        raise ToolError(f"hy-smi: exited with status 1: device {index} not found")

    def run(self, args: list[str]) -> str:
        self.calls.append(list(args))
        if args == []:
            return self.table()
        if args[:1] == ["--showproductname"]:
            return self.info(args)
        if args == ["--showtopotype"]:
            return self.topo()
        if args == ["virtual", "-show-device-info"]:
            return self.virtual_info()
        if args[:2] == ["virtual", "-create-vdevices"]:
            opts = dict(zip(args[1::2], args[2::2], strict=False))
            return self.create(int(opts["-d"]), int(opts["-vdevice-compute-units"]), int(opts["-vdevice-memory-size"]))
        if args[:2] == ["virtual", "-destroy-vdevice"]:
            return self.destroy(int(args[2]))
        raise ToolError(f"hy-smi {' '.join(args)}: exited with status 1: unknown option")

    def _used_mib(self, d) -> int:
        base = int(d.spec.vendor_data.get("hbm_used_mib", 0))
        return min(d.spec.memory_mib, base + sum(v.mib for v in self.vdevs if v.device == d.index))

    def info(self, args: list[str]) -> str:
        out = ["=" * 28 + " System Management Interface " + "=" * 29]
        for d in self.node.devices:
            vd = d.spec.vendor_data
            p = f"DCU[{d.index}]"
            out += [
                f"{p:<16}: Card Series:           {vd.get('series', '')}".rstrip() + ("" if vd.get("series") else " "),
                f"{p:<16}: Card Vendor:           Chengdu Haiguang IC Design Co., Ltd.",
                f"{p:<16}: Device ID: 0x{vd.get('device_id', '0000')}",
                f"{p:<16}: Serial Number: {d.uuid.removeprefix('HCU-')}",
                f"{p:<16}: PCI Bus: {d.pci_bus_id[-12:]}",
                f"{p:<16}: vram Total Memory (B): {d.spec.memory_mib * MIB}",
                f"{p:<16}: vram Total Used Memory (B): {self._used_mib(d) * MIB}",
                f"{p:<16}: (Topology) Numa Node: {d.numa_node if d.numa_node is not None else 'N/A'}",
            ]
        out.append(_BAR)
        return "\n".join(out) + "\n"

    def table(self) -> str:
        out = ["=" * 28 + " System Management Interface " + "=" * 29, _BAR,
               f"{'DCU':<8}{'Temp':<9}{'AvgPwr':<11}{'Perf':<9}{'PwrCap':<11}{'VRAM%':<11}{'DCU%':<10}Mode"]
        for d in self.node.devices:
            if d.fault == "lost":
                continue
            vd = d.spec.vendor_data
            vram = 100 * self._used_mib(d) // d.spec.memory_mib
            out.append(f"{d.index:<8}{str(vd.get('temperature_c', 'N/A')) + 'C':<9}{str(vd.get('power_w', 'N/A')) + 'W':<11}"
                       f"{'auto':<9}{str(vd.get('power_cap_w', 'N/A')) + 'W':<11}{str(vram) + '%':<11}{'0%':<10}Normal")
        out += [_BAR, "=" * 35 + " End of SMI Log " + "=" * 35]
        return "\n".join(out) + "\n"

    def topo(self) -> str:
        n = len(self.node.devices)
        out = ["=" * 24 + " Link Type between two DCUs " + "=" * 24,
               " " * 7 + "".join(f"{'DCU' + str(d.index):<13}" for d in self.node.devices)]
        for a in self.node.devices:
            cells = []
            for b in self.node.devices:
                if a.index == b.index:
                    cells.append("0")
                else:
                    lk = self.node.link_between(a, b)
                    cells.append("XGMI" if lk is not None and lk.kind == "xgmi" else "PCIE")
            out.append(f"{'DCU' + str(a.index):<7}" + "".join(f"{c:<13}" for c in cells))
        if n == 0:
            out.append("")
        return "\n".join(out) + "\n"

    def virtual_info(self) -> str:
        out = []
        for v in self.vdevs:
            out += [f"Device {v.index}:", f"    Actual Device: {v.device}", f"    Compute units: {v.cus}",
                    f"    Global memory: {v.mib * MIB} bytes"]
        return "\n".join(out) + ("\n" if out else "")

    def create(self, device: int, cus: int, mib: int) -> str:
        d = self._dev(device)
        used_cu = sum(v.cus for v in self.vdevs if v.device == device)
        used_mib = sum(v.mib for v in self.vdevs if v.device == device)
        if cus < 1 or used_cu + cus > (d.spec.compute_units or 0) or used_mib + mib > d.spec.memory_mib:
            raise ToolError(f"hy-smi virtual -create-vdevices: exited with status 1: not enough free compute units "
                            f"or memory on device {device}")
        free = [i for i in range(MAX_VDEVICES) if all(v.index != i for v in self.vdevs)]
        if not free:
            raise ToolError("hy-smi virtual -create-vdevices: exited with status 1: no free vdevice index")
        self.vdevs.append(_VDev(free[0], device, cus, mib))
        return f"Create {1} vdevice(s) on device {device} success\n"

    def destroy(self, index: int) -> str:
        for v in self.vdevs:
            if v.index == index:
                self.vdevs.remove(v)
                return f"Destroy vdevice {index} success\n"
        raise ToolError(f"hy-smi virtual -destroy-vdevice {index}: exited with status 1: vdevice {index} not found")
