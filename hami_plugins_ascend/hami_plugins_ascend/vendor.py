"""Ascend's identity on the Kubernetes API: one resource family per chip CommonWord, as HAMi names them
(``huawei.com/<CW>``, ``-memory`` in MiB, ``-core`` in percent, soft mode only; hami-compat §2-§5)."""

from __future__ import annotations

from hami_hal.models import ResourceFamily, SelectorAnnotations, VendorInfo

from .chips import DOMAIN, chips
from .rules import MODE_ANNOTATION


def families() -> list[ResourceFamily]:
    return [
        ResourceFamily(
            common_word=c.commonWord, count=c.resource, memory=c.memory_resource, cores=c.core_resource,
            # HAMi's Ascend request: no memory = the whole card (percentage 100); cores default 0 and the
            # webhook adds no cores for exclusive memory (that is NVIDIA's rule).
            default_memory_mib=0, default_cores=0, full_memory_means_full_cores=False,
        )
        for c in chips()
    ]


def vendor_info() -> VendorInfo:
    return VendorInfo(
        name="ascend",
        display_name="Huawei Ascend",
        resources=families(),
        # HAMi's per-CommonWord UUID filters (hami.io/use-<CW>-uuid) and register/allocation keys are
        # per family; see hami_hal's per-family codec for those.
        selectors=SelectorAnnotations(mode=MODE_ANNOTATION),
        domains=[f"{DOMAIN}/"],
    )
