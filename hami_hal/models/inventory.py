"""Everything one node has: devices, topology, and which plugins were skipped and why."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr

from .. import API_VERSION
from .base import HalModel
from .device import Device
from .topology import Topology
from .vendor import VendorInfo

#: The inventory's wire format major version (:mod:`.skew`): bumped only when a field changes meaning or goes
#: away, never for a field added with a default (an older reader ignores that one). A reader refuses a newer one.
INVENTORY_FORMAT = 1


class SkippedPlugin(HalModel):
    """A plugin that contributed nothing on this node, with the one-line reason."""

    name: str
    reason: str


class NodeInventory(HalModel):
    """The node-side view: what ``hami devices`` prints and the scheduler's node input."""

    api_version: Literal["hami-hal.io/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["NodeInventory"] = "NodeInventory"
    #: Written by the agent; absent = 1. See :data:`INVENTORY_FORMAT`.
    format_version: int = Field(default=INVENTORY_FORMAT, ge=1)
    node: str
    #: ``real``, ``simulated``, or ``mixed`` when some vendors are real and some simulated.
    source: Literal["real", "simulated", "mixed", "empty"]
    devices: list[Device] = Field(default_factory=list)
    topology: Topology = Field(default_factory=Topology)
    vendors: list[VendorInfo] = Field(default_factory=list)
    skipped: list[SkippedPlugin] = Field(default_factory=list)

    #: vendor → the NodeContext its devices were discovered with (not serialised: a node-side fact).
    _contexts: dict[str, Any] = PrivateAttr(default_factory=dict)

    def attach_contexts(self, contexts: dict[str, Any]) -> None:
        """Record the contexts discovery used, so per-device hooks get them explicitly."""
        self._contexts = dict(contexts)

    def context(self, vendor: str) -> Any | None:
        """The NodeContext ``vendor`` was discovered with; None for an inventory read from JSON."""
        return self._contexts.get(vendor)

    def contexts(self) -> dict[str, Any]:
        return dict(self._contexts)

    def device(self, uuid: str) -> Device | None:
        return next((d for d in self.devices if d.uuid == uuid), None)
