"""Policy names accepted by the CLI, the simulator and the extender."""

from __future__ import annotations

from collections.abc import Callable

from hami_hal.errors import InputError

from .base import BasePolicy
from .baselines import BestFitPolicy, DotProductPolicy, GpuClusteringPolicy, GpuPackingPolicy, RandomPolicy
from .fgd import FGDPolicy
from .frag_pack import FragBestFitPolicy, FragPackPolicy

BASELINES: dict[str, Callable[[], BasePolicy]] = {
    "random": RandomPolicy,
    "dotprod": DotProductPolicy,
    "clustering": GpuClusteringPolicy,
    "packing": GpuPackingPolicy,
    "bestfit": BestFitPolicy,
    "fgd": FGDPolicy,
}
OURS: dict[str, Callable[[], BasePolicy]] = {
    "frag-pack": FragPackPolicy,
    "frag-bestfit": FragBestFitPolicy,
}
POLICIES: dict[str, Callable[[], BasePolicy]] = {**BASELINES, **OURS}


def make_policy(name: str) -> BasePolicy:
    """A fresh policy instance (policies keep per-run memo tables)."""
    try:
        return POLICIES[name]()
    except KeyError:
        raise InputError("policy", name, f"is not one of {', '.join(POLICIES)}") from None
