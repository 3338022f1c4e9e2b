"""Which NVML port answers for a node context: the real library, or the fake of a simulated node.

The real port is one per process (NVML is initialised once). A fake is kept per simulated node so
its state (created MIG instances, delivered XID events, injected faults) lives as long as the node
the core passes around; the cache holds a reference to the node, so ids are never reused.
"""

from __future__ import annotations

from collections import OrderedDict

from hami_hal.context import NodeContext
from hami_hal.errors import HalError
from hami_hal.simulation import SimulatedNode

from .fake_nvml import FakeNvml
from .nvml_port import NvmlPort, RealNvml

_MAX_FAKES = 32
_real: RealNvml | None = None
_fakes: OrderedDict[tuple[str, tuple[str, ...]], tuple[SimulatedNode, FakeNvml]] = OrderedDict()


def _key(node: SimulatedNode) -> tuple[str, tuple[str, ...]]:
    return node.name, tuple(d.uuid for d in node.devices)


def port_for(context: NodeContext) -> NvmlPort:
    """The port for ``context``; a simulated context always gets the fake, never the real driver."""
    global _real
    if context.simulated:
        if context.sim is None:
            raise HalError("simulated NVIDIA context carries no simulated node")
        return fake_for(context.sim)
    if _real is None:
        _real = RealNvml()
    return _real


def fake_for(node: SimulatedNode) -> FakeNvml:
    """The fake for a simulated node (same node name and devices → same fake and state)."""
    key = _key(node)
    if key in _fakes:
        _fakes.move_to_end(key)
        return _fakes[key][1]
    fake = FakeNvml(node)
    _fakes[key] = (node, fake)
    while len(_fakes) > _MAX_FAKES:
        _fakes.popitem(last=False)
    return fake


def use_real(port: NvmlPort | None) -> None:
    """Replace the real port (tests: a RealNvml whose pynvml is patched to fail)."""
    global _real
    _real = port  # type: ignore[assignment]


def reset() -> None:
    """Forget every port (tests)."""
    global _real
    _real = None
    _fakes.clear()
