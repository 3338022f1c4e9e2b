"""Kunlunxin's identity on the Kubernetes API, exactly as HAMi names it (docs/hami-compatibility.md; docs/vendors.md, Kunlunxin)."""

from __future__ import annotations

from hami_hal.models import AnnotationKeys, DeviceSetRules, ResourceFamily, SelectorAnnotations, VendorInfo

from .slices import register_partition
from .topology import ALLOWED_COUNTS, GROUPS

VENDOR = "kunlun"
#: HAMi CommonWords: whole cards ("kunlun") and vXPU slices ("XPU").
WHOLE_WORD = "kunlun"
VXPU_WORD = "XPU"
#: Pod annotation HAMi writes for whole cards: the chosen card indexes, read by the vendor runtime.
DEVICE_IDX_ANNOTATION = "BAIDU_COM_DEVICE_IDX"
#: HAMi's record of whole-card allocations (there is no to-allocate key for them).
WHOLE_ALLOCATED = "hami.io/kunlun-allocated"


def vendor_info() -> VendorInfo:
    return VendorInfo(
        name=VENDOR,
        display_name="Kunlunxin XPU",
        resources=[
            # Whole cards: 1, 2, 4 or 8, inside one XPU-link group of four (topology.py); HAMi records
            # them under hami.io/kunlun-allocated only (no to-allocate key) and registers no node annotation
            # for them (node capacity only).
            ResourceFamily(common_word=WHOLE_WORD, count="kunlunxin.com/xpu", whole_device=True,
                           annotations=AnnotationKeys(allocated=WHOLE_ALLOCATED),
                           selectors=SelectorAnnotations(use_uuid="baidu.com/use-gpuuuid",
                                                         nouse_uuid="baidu.com/nouse-gpuuuid"),
                           device_sets=DeviceSetRules(allowed_counts=list(ALLOWED_COUNTS),
                                                      groups=[list(g) for g in GROUPS],
                                                      prefer="least-fragmentation")),
            ResourceFamily(common_word=VXPU_WORD, count="kunlunxin.com/vxpu", memory="kunlunxin.com/vxpu-memory",
                           annotations=AnnotationKeys(node_register="hami.io/node-register-xpu",
                                                      node_handshake="hami.io/node-handshake-xpu",
                                                      to_allocate="hami.io/xpu-devices-to-allocate",
                                                      allocated="hami.io/xpu-devices-allocated"),
                           selectors=SelectorAnnotations(use_uuid="hami.io/use-xpu-uuid",
                                                         nouse_uuid="hami.io/no-use-xpu-uuid"),
                           # a node registered by HAMi's own vXPU plugin keeps the fixed same-size slices
                           register_partition=register_partition()),
        ],
        domains=["kunlunxin.com/"],
    )
