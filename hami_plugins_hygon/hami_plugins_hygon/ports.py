"""Which hy-smi answers for a node context: the real tool, or the fake of a simulated node.

A fake is kept per simulated node (same name and device UUIDs → same fake), so vNPUs created through
it live as long as the node the core passes around.
"""

from __future__ import annotations

from collections import OrderedDict

from hami_hal.context import NodeContext
from hami_hal.errors import HalError, InputError
from hami_hal.simulation import SimulatedNode

from .fake_hy_smi import FakeHySmi
from .hy_smi import DEFAULT_TIMEOUT_S, HySmi, RealRunner

_MAX_FAKES = 32
_real: HySmi | None = None
_fakes: OrderedDict[tuple[str, tuple[str, ...]], tuple[SimulatedNode, FakeHySmi]] = OrderedDict()


def _timeout(config: dict) -> float:
    raw = (config.get("hygon") or {}).get("hy_smi_timeout_s", DEFAULT_TIMEOUT_S) \
        if isinstance(config.get("hygon"), dict) else DEFAULT_TIMEOUT_S
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 300:
        raise InputError("hygon.hy_smi_timeout_s", raw, "must be a number of seconds in (0, 300]")
    return float(raw)


def port_for(context: NodeContext) -> HySmi:
    """The port for ``context``; a simulated context always gets the fake, never the real tool."""
    global _real
    if context.simulated:
        if context.sim is None:
            raise HalError("simulated Hygon context carries no simulated node")
        return HySmi(fake_for(context.sim))
    if _real is None:
        _real = HySmi(RealRunner(timeout_s=_timeout(context.config)))
    return _real


def fake_for(node: SimulatedNode) -> FakeHySmi:
    key = (node.name, tuple(d.uuid for d in node.devices))
    if key in _fakes:
        _fakes.move_to_end(key)
        return _fakes[key][1]
    fake = FakeHySmi(node)
    _fakes[key] = (node, fake)
    while len(_fakes) > _MAX_FAKES:
        _fakes.popitem(last=False)
    return fake


def use_real(port: HySmi | None) -> None:
    """Replace the real port (tests: a runner that hangs, exits non-zero or prints garbage)."""
    global _real
    _real = port


def reset() -> None:
    global _real
    _real = None
    _fakes.clear()
