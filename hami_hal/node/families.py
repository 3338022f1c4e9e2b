"""Resource families on this node: which devices each kubelet resource (``<vendor>.com/gpu``...) offers.

One device plugin server runs per family. A vendor with one family offers all its devices there. With
several families (a whole-device family beside a shared one, one family per chip) a device goes to the family its plugin
names in ``Device.family`` (one the vendor does not declare: not offered at all); without one, whole-only devices (partition kind ``whole``) go to the
whole-device family and the rest to the first shared family.
Each device appears to the kubelet as N virtual IDs ``<uuid>-<i>``, N = its split count (HAMi's
replica scheme); the kubelet's capacity for the count resource is the sum.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from ..models import Device, PartitionKind, ResourceFamily, VendorInfo

log = logging.getLogger(__name__)

#: The kubelet refuses longer device IDs (kubernetes-contracts.md §2.3).
MAX_DEVICE_ID = 63


@dataclass
class Family:
    """One kubelet resource and the devices behind it."""

    vendor: VendorInfo
    resource: ResourceFamily
    devices: list[Device] = field(default_factory=list)

    @property
    def resource_name(self) -> str:
        return self.resource.count

    @property
    def endpoint(self) -> str:
        """Socket file name in the device-plugin folder."""
        return "hami-hal-" + re.sub(r"[^a-z0-9]+", "-", self.resource.count.lower()).strip("-") + ".sock"

    @property
    def preferred_allocation(self) -> bool:
        """Whether the kubelet is offered ``GetPreferredAllocation`` for this resource: the option is one per
        resource, so a device whose plugin turned it off (``Device.preferred_allocation``) turns it off."""
        return all(d.preferred_allocation for d in self.devices)

    def replicas(self) -> dict[str, Device]:
        """Virtual device ID -> physical device, in device then replica order."""
        out: dict[str, Device] = {}
        for d in self.devices:
            n = d.partition.max_slots if d.partition else 1
            for i in range(n):
                rid = f"{d.uuid}-{i}"
                if len(rid) > MAX_DEVICE_ID:
                    rid = f"{d.vendor}{d.index}-{i}"
                out[rid] = d
        return out


def families(vendors: list[VendorInfo], devices: list[Device]) -> list[Family]:
    """The families with at least one device, in vendor then family order."""
    out: list[Family] = []
    for v in sorted(vendors, key=lambda v: v.name):
        mine = [d for d in devices if d.vendor == v.name]
        if not mine or not v.resources:
            continue
        if len(v.resources) == 1:
            out.append(Family(v, v.resources[0], mine))
            continue
        by_word = {f.common_word: f for f in v.resources}
        whole = next((f for f in v.resources if f.whole_device), None)
        shared = next((f for f in v.resources if not f.whole_device), None)
        picked: dict[str, list[Device]] = {}
        for d in mine:
            if d.family in by_word:  # the plugin says which family the device serves
                fam = by_word[d.family]
            elif d.family is not None and len(v.resources) > 1:
                # a family the vendor does not declare (a chip its plugin's table lacks): never offered under
                # another family's resource, whose capacity it would inflate
                log.warning("device %s (%s): family %s is not one of vendor %s's resources: not offered",
                            d.uuid, d.model, d.family, v.name)
                continue
            elif whole is not None and d.partition is not None and d.partition.kind is PartitionKind.WHOLE:
                fam = whole
            else:
                fam = shared or v.resources[0]
            picked.setdefault(fam.common_word, []).append(d)
        out += [Family(v, f, picked[f.common_word]) for f in v.resources if f.common_word in picked]
    return out
