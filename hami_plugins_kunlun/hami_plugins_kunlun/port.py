"""Where ``xpu-smi`` answers come from: the real tool (run lazily, with a time-out) or a simulated node.

Both return the tool's *text*, so the same parsers (:mod:`.xpusmi`) read real and simulated cards; the
fake renders the formats documented there from the node's device profiles.
"""

from __future__ import annotations

from typing import Protocol

from hami_hal.context import NodeContext
from hami_hal.errors import HalError
from hami_hal.simulation import SimulatedNode
from hami_hal.vendor_tool import ToolError, find_tool, pci_numa_node, run_tool

#: Where the Kunlun runtime installs the tool (docs/vendors.md, Kunlunxin); PATH is searched first.
TOOL_DIRS = ("/opt/xre/bin", "/usr/local/xpu/bin")
#: Intel ships an unrelated tool of the same name; its banner says so.
INTEL_BANNER = "Intel"


class XpuSmi(Protocol):
    source: str

    def machine(self) -> str: ...

    def query(self, index: int) -> str: ...

    def numa_node(self, bus_id: str) -> int | None: ...


class RealXpuSmi:
    """The installed ``xpu-smi``; found on first use so importing the plugin never touches the host."""

    source = "real"

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self._path: str | None = None

    def _tool(self) -> str:
        if self._path is None:
            self._path = find_tool("xpu-smi", TOOL_DIRS)
        return self._path

    def machine(self) -> str:
        out = run_tool([self._tool(), "-m"], timeout_s=self.timeout_s)
        first = next((ln for ln in out.splitlines() if ln.strip()), "")
        if INTEL_BANNER in first:
            raise ToolError(f"{self._tool()} is Intel's xpu-smi, not Kunlunxin's")
        return out

    def query(self, index: int) -> str:
        return run_tool([self._tool(), "-i", str(index), "-q"], timeout_s=self.timeout_s)

    def numa_node(self, bus_id: str) -> int | None:
        return pci_numa_node(bus_id)


def _bdf(sim_bus_id: str) -> str:
    """The simulated bus id as the tool prints it (4-digit PCI domain, lower case)."""
    return sim_bus_id.lower().replace("00000000:", "0000:")


class FakeXpuSmi:
    """``xpu-smi`` as it would answer on a simulated node (formats of :mod:`.xpusmi`)."""

    source = "simulated"

    def __init__(self, node: SimulatedNode) -> None:
        self.node = node
        self.devices = sorted(node.devices, key=lambda d: d.index)

    def _dev(self, index: int):
        for d in self.devices:
            if d.index == index:
                if d.fault == "lost":
                    raise ToolError(f"xpu-smi -i {index} -q: exit status 1: device {index} not responding")
                return d
        raise ToolError(f"xpu-smi -i {index} -q: exit status 1: invalid device index {index}")

    def numa_node(self, bus_id: str) -> int | None:
        """What sysfs would say for the simulated card at ``bus_id``."""
        return next((d.numa_node for d in self.devices if _bdf(d.pci_bus_id) == bus_id.lower()), None)

    def machine(self) -> str:
        lines = []
        for d in self.devices:
            vd = d.spec.vendor_data
            fields = ["xpu", str(d.index)] + ["0"] * 30
            fields[17] = str(int(vd.get("used_mib", 0)))
            fields[18] = str(d.spec.memory_mib)
            fields[19] = str(int(vd.get("utilization_pct", 0)))
            lines.append(" ".join(fields))
        return "\n".join(lines) + "\n"

    def query(self, index: int) -> str:
        d = self._dev(index)
        vd = d.spec.vendor_data
        used = int(vd.get("used_mib", 0))
        return "\n".join([
            f"Product Name                   : {d.spec.model}",
            f"Serial Number                  : {d.uuid}",
            f"Bus Id                         : {_bdf(d.pci_bus_id)}",
            f"Driver Version                 : {self.node.driver_version}",
            f"XPU-RT Version                 : {self.node.runtime_version or 'N/A'}",
            "    Memory Usage",
            f"        Total                  : {d.spec.memory_mib} MiB",
            f"        Used                   : {used} MiB",
            f"        Free                   : {d.spec.memory_mib - used} MiB",
            "    Utilization",
            f"        Xpu                    : {int(vd.get('utilization_pct', 0))} %",
            "    Temperature",
            f"        XPU Current Temp       : {vd.get('temperature_c', 40)} C",
            "    Power",
            f"        Power Draw             : {vd.get('power_w', 90.0)} W",
            "    Processes                  : None",
        ]) + "\n"


_real: RealXpuSmi | None = None
_fakes: dict[int, tuple[SimulatedNode, FakeXpuSmi]] = {}


def port_for(context: NodeContext) -> XpuSmi:
    """The fake for a simulated context (never the real tool), else the host's ``xpu-smi``."""
    global _real
    if context.simulated:
        if context.sim is None:
            raise HalError("simulated Kunlunxin context carries no simulated node")
        entry = _fakes.get(id(context.sim))
        if entry is None or entry[0] is not context.sim:
            if len(_fakes) > 32:
                _fakes.clear()
            entry = _fakes[id(context.sim)] = (context.sim, FakeXpuSmi(context.sim))
        return entry[1]
    if _real is None:
        _real = RealXpuSmi()
    return _real


def use_real(port: XpuSmi | None) -> None:
    """Replace the real port (tests: a tool that hangs or fails)."""
    global _real
    _real = port  # type: ignore[assignment]
