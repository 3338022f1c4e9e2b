"""What the core tells a plugin about the node it runs on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .simulation.node import SimulatedNode

Backend = Literal["real", "sim"]


@dataclass
class NodeContext:
    """Passed to every node-side hook.

    With ``backend == "sim"``, ``sim`` holds this plugin's part of the simulated node, and the plugin
    must answer through its fake SDK built from it, running the same code as on real hardware.
    """

    backend: Backend
    node_name: str
    sim: SimulatedNode | None = None
    #: Plugin configuration (HAMi per-node settings such as device_split_count), already merged.
    config: dict = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        return self.backend == "sim"
