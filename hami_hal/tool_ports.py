"""Which port answers for a node context, for plugins that drive a vendor tool: the real tool (built
once, on first real use) or a fake built from the simulated node.

A fake is kept per simulated node (same name and device UUIDs give the same fake), so partitions created
through it live as long as the node the core passes around; at most ``max_fakes`` are kept (least
recently used dropped). A simulated context always gets a fake, never the real tool. Knows no vendor.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from .context import NodeContext
from .errors import HalError, InputError
from .simulation import SimulatedNode

Port = TypeVar("Port")
Fake = TypeVar("Fake")

#: Largest tool time-out a configuration may ask for, in seconds.
MAX_TIMEOUT_S = 300.0


def timeout_from_config(config: dict, section: str, key: str, default: float) -> float:
    """``config[section][key]`` as seconds in (0, MAX_TIMEOUT_S], ``default`` when absent; one-line
    :class:`InputError` naming ``section.key`` otherwise."""
    part = config.get(section)
    raw = part.get(key, default) if isinstance(part, dict) else default
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= MAX_TIMEOUT_S:
        raise InputError(f"{section}.{key}", raw, f"must be a number of seconds in (0, {MAX_TIMEOUT_S:g}]")
    return float(raw)


class ToolPorts(Generic[Port, Fake]):
    """The real port (lazy, replaceable in tests) and the per-node fakes of one plugin."""

    def __init__(self, *, make_real: Callable[[NodeContext], Port], make_fake: Callable[[SimulatedNode], Fake],
                 wrap_fake: Callable[[Fake], Port], label: str, max_fakes: int = 32) -> None:
        self._make_real, self._make_fake, self._wrap_fake = make_real, make_fake, wrap_fake
        self._label, self._max_fakes = label, max_fakes
        self.real: Port | None = None
        #: (node name, device UUIDs) -> (node, fake), least recently used first.
        self.fakes: OrderedDict[tuple[str, tuple[str, ...]], tuple[SimulatedNode, Fake]] = OrderedDict()

    def port_for(self, context: NodeContext) -> Port:
        """The port for ``context``; a simulated context always gets the fake, never the real tool."""
        if context.simulated:
            if context.sim is None:
                raise HalError(f"simulated {self._label} context carries no simulated node")
            return self._wrap_fake(self.fake_for(context.sim))
        if self.real is None:
            self.real = self._make_real(context)
        return self.real

    def fake_for(self, node: SimulatedNode) -> Fake:
        key = (node.name, tuple(d.uuid for d in node.devices))
        if key in self.fakes:
            self.fakes.move_to_end(key)
            return self.fakes[key][1]
        fake = self._make_fake(node)
        self.fakes[key] = (node, fake)
        while len(self.fakes) > self._max_fakes:
            self.fakes.popitem(last=False)
        return fake

    def use_real(self, port: Port | None) -> None:
        """Replace the real port (tests: a runner that hangs, exits non-zero or prints garbage)."""
        self.real = port

    def reset(self) -> None:
        self.real = None
        self.fakes.clear()
