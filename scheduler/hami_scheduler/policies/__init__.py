"""Node policies: score a node for a pod and choose its devices.

The simulator and the extender call the same policy objects; see :mod:`.base` for the view they read.
"""

from __future__ import annotations

from .base import NodeView, PodShape, Policy
from .registry import BASELINES, OURS, POLICIES, make_policy

__all__ = ["BASELINES", "OURS", "POLICIES", "NodeView", "Policy", "PodShape", "make_policy"]
