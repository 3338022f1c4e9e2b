"""Hygon's identity on the Kubernetes API. HAMi renamed DCU to HCU (#2969): both resource sets are
accepted, each with its own HAMi annotation keys so a pod's allocation is written where the matching
device plugin reads it; ``hcu*`` is canonical (docs, examples, the node register we write).

Rules from HAMi's adapter: cores default to 100 (a bare ``hcunum`` takes whole cards), no memory means
all of it, 100 % cores is exclusive, and a multi-DCU request takes whole cards (one vDCU per container).
"""

from __future__ import annotations

from hami_hal.models import AnnotationKeys, DeviceSetRules, ResourceFamily, SelectorAnnotations, VendorInfo

CANONICAL, LEGACY = "HCU", "DCU"


def _family(word: str, prefix: str) -> ResourceFamily:
    low = word.lower()
    return ResourceFamily(
        common_word=word, count=f"hygon.com/{prefix}num", memory=f"hygon.com/{prefix}mem",
        cores=f"hygon.com/{prefix}cores", default_cores=100, default_memory_mib=0,
        annotations=AnnotationKeys(node_register=f"hami.io/node-{low}-register",
                                   node_handshake=f"hami.io/node-handshake-{low}",
                                   to_allocate=f"hami.io/{low}-devices-to-allocate",
                                   allocated=f"hami.io/{low}-devices-allocated"),
        device_sets=DeviceSetRules(whole_device_above=1),
        cores_above_100="clamp",  # HAMi's Hygon adapter clamps dcucores above 100
    )


def vendor_info() -> VendorInfo:
    return VendorInfo(
        name="hygon", display_name="Hygon DCU",
        resources=[_family(CANONICAL, "hcu"), _family(LEGACY, "dcu")],
        selectors=SelectorAnnotations(use_type="hygon.com/use-dcutype", nouse_type="hygon.com/nouse-dcutype",
                                      use_uuid="hygon.com/use-gpuuuid", nouse_uuid="hygon.com/nouse-gpuuuid"),
        domains=["hygon.com/"],
    )
