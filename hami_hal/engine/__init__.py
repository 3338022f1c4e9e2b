"""The vendor-neutral allocation engine: one decision code for node side, conformance and scheduler."""

from .device_fit import Proposal, fit_device
from .device_state import Contribution, DeviceState
from .node_state import NodeState, PodFit, Veto
from .replay import check_exact, check_replay

__all__ = ["Contribution", "DeviceState", "NodeState", "PodFit", "Proposal", "Veto", "check_exact", "check_replay",
           "fit_device"]
