"""Where ``mx-smi`` answers come from: the real tool (run lazily, with a time-out) or a simulated node.

Both return the tool's text, so the parsers of :mod:`.mxsmi` read real and simulated GPUs alike; the fake
renders those formats from the node's device profiles; the node profile's ``metaxlink`` links become ``MX``
cells of the link matrix.
"""

from __future__ import annotations

from typing import Protocol

from hami_hal.context import NodeContext
from hami_hal.errors import HalError
from hami_hal.simulation import SimulatedNode
from hami_hal.vendor_tool import find_tool, run_tool

TOOL_DIRS = ("/opt/mxdriver/bin", "/opt/maca/bin")


class MxSmi(Protocol):
    source: str

    def summary(self) -> str: ...

    def uuids(self) -> str: ...

    def memory(self) -> str: ...

    def topology(self) -> str: ...


class RealMxSmi:
    """The installed ``mx-smi``; found on first use so importing the plugin never touches the host."""

    source = "real"

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self._path: str | None = None

    def _run(self, *args: str) -> str:
        if self._path is None:
            self._path = find_tool("mx-smi", TOOL_DIRS)
        return run_tool([self._path, *args], timeout_s=self.timeout_s)

    def summary(self) -> str:
        return self._run()

    def uuids(self) -> str:
        return self._run("-L")

    def memory(self) -> str:
        return self._run("--show-memory")

    def topology(self) -> str:
        return self._run("topo", "-m")


class FakeMxSmi:
    """``mx-smi`` as it would answer on a simulated node."""

    source = "simulated"

    def __init__(self, node: SimulatedNode) -> None:
        self.node = node
        self.devices = sorted(node.devices, key=lambda d: d.index)

    def summary(self) -> str:
        devs = self.devices
        out = [
            f"mx-smi  version: {self.node.runtime_version or '2.1.9'}",
            "",
            "=================== MetaX System Management Interface Log ===================",
            f"Attached GPUs                                     : {len(devs)}",
            "+---------------------------------------------------------------------------------+",
            f"| MX-SMI 2.1.9                        Kernel Mode Driver Version: {self.node.driver_version} |",
            f"| MACA Version: {self.node.runtime_version or 'N/A'}                                            |",
            "|------------------------------------+---------------------+----------------------+",
            "| GPU         NAME                   | Bus-id              | GPU-Util             |",
            "| Temp        Pwr:Usage/Cap          | Memory-Usage        |                      |",
            "|====================================+=====================+======================|",
        ]
        for d in devs:
            vd = d.spec.vendor_data
            bus = d.pci_bus_id.lower().replace("00000000:", "0000:")
            out.append(f"| {d.index:<11} {d.spec.model:<22} | {bus:<19} | {int(vd.get('utilization_pct', 0))}%"
                       "                   |")
            out.append(f"| {vd.get('temperature_c', 36)}C         {vd.get('power_w', 56)}W / 350W             |"
                       f" {int(vd.get('used_mib', 0))}/{d.spec.memory_mib} MiB        |                      |")
            out.append("+------------------------------------+---------------------+----------------------+")
        return "\n".join(out) + "\n"

    def uuids(self) -> str:
        return "".join(f"GPU {d.index}: {d.spec.model} (UUID: {d.uuid})\n" for d in self.devices)

    def memory(self) -> str:
        """A GPU that fell off (fault ``lost``) is missing here, as the tool cannot read its memory."""
        out = []
        for d in (d for d in self.devices if d.fault != "lost"):
            used = int(d.spec.vendor_data.get("used_mib", 0))
            out += [f"GPU#{d.index}  {d.pci_bus_id.lower()}", f"    vis_vram total : {d.spec.memory_mib * 1024} KB",
                    f"    vis_vram used : {used * 1024} KB", f"    vis_vram usage : {used * 100 // d.spec.memory_mib} %"]
        return "\n".join(out) + "\n"

    def topology(self) -> str:
        devs = self.devices
        head = "\t" + "\t".join(f"GPU{d.index}" for d in devs) + "\tCPU Affinity\tNUMA Affinity"
        rows = [head]
        for a in devs:
            cells = []
            for b in devs:
                if a.index == b.index:
                    cells.append("X")
                elif (lk := self.node.link_between(a, b)) is not None and lk.kind == "metaxlink":
                    cells.append("MX")
                else:
                    cells.append("NODE" if a.numa_node == b.numa_node else "SYS")
            rows.append(f"GPU{a.index}\t" + "\t".join(cells) + f"\t0-63\t{a.numa_node or 0}")
        rows += ["", "Legend:", "  X    = Self", "  MX   = Connection traversing MetaXLink",
                 "  NODE = Connection traversing PCIe and the interconnect within a NUMA node",
                 "  SYS  = Connection traversing PCIe and the SMP interconnect between NUMA nodes"]
        return "\n".join(rows) + "\n"


_real: RealMxSmi | None = None
_fakes: dict[int, tuple[SimulatedNode, FakeMxSmi]] = {}


def port_for(context: NodeContext) -> MxSmi:
    global _real
    if context.simulated:
        if context.sim is None:
            raise HalError("simulated MetaX context carries no simulated node")
        entry = _fakes.get(id(context.sim))
        if entry is None or entry[0] is not context.sim:
            if len(_fakes) > 32:
                _fakes.clear()
            entry = _fakes[id(context.sim)] = (context.sim, FakeMxSmi(context.sim))
        return entry[1]
    if _real is None:
        _real = RealMxSmi()
    return _real
