"""Simulated hardware described as data (see :mod:`.profile_models`) and composed into nodes."""

from .catalog import PROFILE_PATH_ENV, ProfileCatalog
from .node import SimDevice, SimLink, SimulatedNode
from .profile_models import DeviceProfile, NodeProfile

__all__ = [
    "PROFILE_PATH_ENV", "DeviceProfile", "NodeProfile", "ProfileCatalog", "SimDevice", "SimLink",
    "SimulatedNode",
]
