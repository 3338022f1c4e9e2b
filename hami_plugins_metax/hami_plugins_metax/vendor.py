"""MetaX's identity on the Kubernetes API, exactly as HAMi names it (docs/hami-compatibility.md; docs/vendors.md, MetaX)."""

from __future__ import annotations

from hami_hal.models import (
    AnnotationKeys,
    AttributeMatch,
    PodAnnotationRule,
    ResourceFamily,
    SelectorAnnotations,
    VendorInfo,
)

VENDOR = "metax"
GPU_WORD = "Metax-GPU"
SGPU_WORD = "Metax-SGPU"
#: vmemory: a bare number is GiB (HAMi MemoryFactor 1024).
VMEMORY_UNIT_MIB = 1024
QOS_ANNOTATION = "metax-tech.com/sgpu-qos-policy"
APP_CLASS_ANNOTATION = "metax-tech.com/sgpu-app-class"
TOPOLOGY_AWARE_ANNOTATION = "metax-tech.com/sgpu-topology-aware"
#: Per-container list of {uuid, compute, vRam} the MetaX sGPU runtime reads (HAMi writes it at Filter).
GPU_DEVICES_ALLOCATED = "metax-tech.com/gpu-devices-allocated"
NODE_DEVICES = "metax-tech.com/node-gpu-devices"
PREDICATE_TIME = "metax-tech.com/predicate-time"
QOS_POLICIES = ["best-effort", "fixed-share", "burst-share"]
GPU_ANNOTATIONS = AnnotationKeys(to_allocate="hami.io/metax-gpu-devices-to-allocate",
                                 allocated="hami.io/metax-gpu-devices-allocated")
SGPU_ANNOTATIONS = AnnotationKeys(to_allocate="hami.io/metax-sgpu-devices-to-allocate",
                                  allocated="hami.io/metax-sgpu-devices-allocated")


def vendor_info() -> VendorInfo:
    return VendorInfo(
        name=VENDOR,
        display_name="MetaX GPU",
        resources=[
            ResourceFamily(common_word=GPU_WORD, count="metax-tech.com/gpu", whole_device=True,
                           annotations=GPU_ANNOTATIONS),
            ResourceFamily(
                common_word=SGPU_WORD, count="metax-tech.com/sgpu", memory="metax-tech.com/vmemory",
                memory_unit_mib=VMEMORY_UNIT_MIB, memory_suffix_means_bytes=True, cores="metax-tech.com/vcore",
                annotations=SGPU_ANNOTATIONS,
                pod_annotations=[
                    # HAMi checkDeviceQos: a card with tenants takes only pods of its policy; idle cards any.
                    PodAnnotationRule(key=QOS_ANNOTATION, attribute="qos", match=AttributeMatch.TENANTS,
                                      allowed=QOS_POLICIES, default="best-effort"),
                    PodAnnotationRule(key=APP_CLASS_ANNOTATION, attribute="app_class",
                                      allowed=["online", "offline"], default="offline"),
                    PodAnnotationRule(key=TOPOLOGY_AWARE_ANNOTATION, attribute="topology_aware",
                                      allowed=["true", "false"]),
                ]),
        ],
        selectors=SelectorAnnotations(use_uuid="metax-tech.com/use-gpuuuid", nouse_uuid="metax-tech.com/nouse-gpuuuid"),
        domains=["metax-tech.com/"],
    )
