"""Resource families a node adds to a vendor: the one check both sides apply.

A plugin may describe more families on one node than its ``hami_hal_vendor`` answer holds (a chip its node's
config adds: ``hami_hal_node_vendor``). The node agent serves them and publishes them in its inventory
annotation; the scheduler learns them from there. That annotation is written by the node, so what it adds is
held to the same bounds here on both sides: a family the vendor already has is never replaced, every added name
lies under the vendor's own ``domains``, and no added resource name or annotation key is one another family uses
(a node cannot take over another family's requests or allocations).
"""

from __future__ import annotations

import re

from .errors import InputError
from .hami_compat.keys import selector_keys
from .models import ResourceFamily, VendorInfo

#: At most this many families a vendor's nodes may add (a chip table of a few entries plus a cluster's own).
MAX_ADDED_FAMILIES = 64
#: The fields of a family that hold resource names.
_RESOURCE_FIELDS = ("count", "memory", "memory_percent", "cores", "priority")
#: A CommonWord: HAMi writes it into allocation strings and annotation keys.
_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,62}$")
#: A resource name or annotation key (Kubernetes qualified name: optional DNS prefix, then a name).
_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _keys(fam: ResourceFamily) -> list[tuple[str, str]]:
    """(field, key) of the family's HAMi protocol keys (register, handshake, allocations): they carry its devices
    and allocations, so no two families share one."""
    return [(k, v) for k, v in (fam.annotations.model_dump().items() if fam.annotations else []) if isinstance(v, str)]


def _read_keys(fam: ResourceFamily) -> list[str]:
    """Pod annotation keys the family only reads (selectors, pod rules): families may share them."""
    return selector_keys(fam.selectors) + [r.key for r in fam.pod_annotations]


def _taken(vendors: list[VendorInfo]) -> tuple[set[str], set[str], set[str]]:
    words, names, keys = set(), set(), set()
    for v in vendors:
        keys.update(x for x in v.annotations.model_dump().values() if isinstance(x, str))
        for f in v.resources:
            words.add(f.common_word)
            names.update(f.names())
            keys.update(k for _, k in _keys(f))
    return words, names, keys


def added_families(base: VendorInfo, offered: VendorInfo, others: list[VendorInfo],
                   room: int = MAX_ADDED_FAMILIES) -> list[ResourceFamily]:
    """The families ``offered`` (a node's view of vendor ``base``) adds; ``others``: every other vendor; ``room``:
    how many more families the vendor may take.

    A family ``base`` already has (by CommonWord) is skipped, whatever ``offered`` says of it. Raises
    InputError naming the field and the value; nothing is added then."""
    if offered.name != base.name:
        raise InputError("vendor.name", offered.name, f"is not {base.name}")
    words, names, keys = _taken([base, *others])
    new = [f for f in offered.resources if f.common_word not in {g.common_word for g in base.resources}]
    if len(new) > room:
        raise InputError(f"{base.name}.resources", f"{len(new)} added families",
                         f"is more than the {max(room, 0)} the vendor may still take (at most {MAX_ADDED_FAMILIES})")
    for f in new:
        where = f"{base.name}.resources[{f.common_word[:40]}]"
        if not _WORD.match(f.common_word) or f.common_word in words:
            raise InputError(f"{where}.common_word", f.common_word[:80], "must be a new CommonWord (letters, digits, "
                             "'.', '_', '-'; at most 63 characters)")
        for field in _RESOURCE_FIELDS:
            n = getattr(f, field)
            if n is None:
                continue
            if not _NAME.match(n) or not any(n.startswith(d) for d in base.domains):
                raise InputError(f"{where}.{field}", n[:80], f"must be a resource name under {base.name}'s domains "
                                 f"({', '.join(base.domains) or 'none declared'})")
            if n in names:
                raise InputError(f"{where}.{field}", n, "is already another family's resource name")
        for k in _read_keys(f):
            if not _NAME.match(k):
                raise InputError(f"{where}", k[:80], "must be an annotation key (a Kubernetes qualified name)")
        for field, k in _keys(f):
            if not _NAME.match(k):
                raise InputError(f"{where}.annotations.{field}", k[:80],
                                 "must be an annotation key (a Kubernetes qualified name)")
            if k in keys:
                raise InputError(f"{where}.annotations.{field}", k, "is already another family's annotation key")
        words.add(f.common_word)
        names.update(f.names())
        keys.update(k for _, k in _keys(f))
    return new


def with_families(base: VendorInfo, added: list[ResourceFamily]) -> VendorInfo:
    return base.model_copy(update={"resources": [*base.resources, *added]}) if added else base
