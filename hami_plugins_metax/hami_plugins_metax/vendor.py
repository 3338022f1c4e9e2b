"""MetaX's identity on the Kubernetes API, exactly as HAMi names it (hami-compat.md §2-§5, vendors.md §B.5)."""

from __future__ import annotations

from hami_hal.models import AnnotationKeys, ResourceFamily, SelectorAnnotations, VendorInfo

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
GPU_ANNOTATIONS = AnnotationKeys(to_allocate="hami.io/metax-gpu-devices-to-allocate",
                                 allocated="hami.io/metax-gpu-devices-allocated")
SGPU_ANNOTATIONS = AnnotationKeys(to_allocate="hami.io/metax-sgpu-devices-to-allocate",
                                  allocated="hami.io/metax-sgpu-devices-allocated")


def vendor_info() -> VendorInfo:
    return VendorInfo(
        name=VENDOR,
        display_name="MetaX GPU",
        resources=[
            ResourceFamily(common_word=GPU_WORD, count="metax-tech.com/gpu", whole_device=True),
            ResourceFamily(common_word=SGPU_WORD, count="metax-tech.com/sgpu", memory="metax-tech.com/vmemory",
                           memory_unit_mib=VMEMORY_UNIT_MIB, cores="metax-tech.com/vcore"),
        ],
        selectors=SelectorAnnotations(use_uuid="metax-tech.com/use-gpuuuid", nouse_uuid="metax-tech.com/nouse-gpuuuid"),
        annotations=SGPU_ANNOTATIONS,
        domains=["metax-tech.com/"],
    )
