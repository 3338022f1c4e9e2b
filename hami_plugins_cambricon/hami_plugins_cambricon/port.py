"""Where ``cnmon`` answers come from: the real tool (run lazily, with a time-out) or a simulated node; both
return the tool's text for :func:`.cnmon.parse_info`."""

from __future__ import annotations

from typing import Protocol

from hami_hal.context import NodeContext
from hami_hal.errors import HalError
from hami_hal.simulation import SimulatedNode
from hami_hal.vendor_tool import ToolError, find_tool, pci_numa_node, run_tool

TOOL_DIRS = ("/usr/local/neuware/bin", "/usr/bin")
class Cnmon(Protocol):
    source: str

    def info(self) -> str: ...

    def numa_node(self, bus_id: str) -> int | None: ...


class RealCnmon:
    source = "real"

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self._path: str | None = None

    def info(self) -> str:
        if self._path is None:
            self._path = find_tool("cnmon", TOOL_DIRS)
        return run_tool([self._path, "info"], timeout_s=self.timeout_s)

    def numa_node(self, bus_id: str) -> int | None:
        return pci_numa_node(bus_id)


class FakeCnmon:
    """``cnmon info`` as it would answer on a simulated node (format of :mod:`.cnmon`)."""

    source = "simulated"

    def __init__(self, node: SimulatedNode) -> None:
        self.node = node

    def numa_node(self, bus_id: str) -> int | None:
        """What sysfs would say for the simulated card at ``bus_id``."""
        for d in self.node.devices:
            if d.pci_bus_id.lower().replace("00000000:", "0000:") == bus_id.lower():
                return d.numa_node
        return None

    def info(self) -> str:
        out = []
        for d in sorted(self.node.devices, key=lambda d: d.index):
            if d.fault == "lost":
                raise ToolError(f"cnmon info: exit status 1: card {d.index} not responding")
            vd = d.spec.vendor_data
            used = int(vd.get("used_mib", 0))
            ecc = "N/A" if d.fault != "ecc" else "3"
            out += [
                f"Card {d.index}",
                f"Product Name                   : {d.spec.model}",
                f"Product Type                   : {vd.get('product_type', 'MLU')}",
                f"UUID                           : {d.uuid}",
                f"Bus ID                         : {d.pci_bus_id.lower().replace('00000000:', '0000:')}",
                f"Driver Version                 : {self.node.driver_version}",
                "Physical Memory Usage          :",
                f"    Total                      : {d.spec.memory_mib} MiB",
                f"    Used                       : {used} MiB",
                f"    Free                       : {d.spec.memory_mib - used} MiB",
                "Utilization                    :",
                f"    MLU Average                : {int(vd.get('utilization_pct', 0))} %",
                f"DDR ECC Err Count              : {ecc}",
                "",
            ]
        return "\n".join(out)


_real: RealCnmon | None = None
_fakes: dict[int, tuple[SimulatedNode, FakeCnmon]] = {}


def port_for(context: NodeContext) -> Cnmon:
    global _real
    if context.simulated:
        if context.sim is None:
            raise HalError("simulated Cambricon context carries no simulated node")
        entry = _fakes.get(id(context.sim))
        if entry is None or entry[0] is not context.sim:
            if len(_fakes) > 32:
                _fakes.clear()
            entry = _fakes[id(context.sim)] = (context.sim, FakeCnmon(context.sim))
        return entry[1]
    if _real is None:
        _real = RealCnmon()
    return _real
