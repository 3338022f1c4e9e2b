"""NVIDIA's identity on the Kubernetes API: HAMi's resource names, selectors and annotation keys."""

from __future__ import annotations

from hami_hal.models import AnnotationKeys, DeviceSetRules, ResourceFamily, SelectorAnnotations, VendorInfo

from .config import NODE_ENTRY_KEYS

COMMON_WORD = "NVIDIA"
#: The CUDA interposer keeps per-device limits for at most this many GPUs of one container.
MAX_ENFORCED_DEVICES = 16


def vendor_info() -> VendorInfo:
    """Names exactly as HAMi v2.10 uses them (hami-compat.md §2, §3, §4.1, §5.3)."""
    return VendorInfo(
        name="nvidia",
        display_name="NVIDIA",
        resources=[
            ResourceFamily(
                common_word=COMMON_WORD,
                count="nvidia.com/gpu",
                memory="nvidia.com/gpumem",
                memory_percent="nvidia.com/gpumem-percentage",
                cores="nvidia.com/gpucores",
                priority="nvidia.com/priority",
                # Data, not a veto hook: the scheduler applies it too.
                device_sets=DeviceSetRules(max_shared_devices=MAX_ENFORCED_DEVICES),
            )
        ],
        selectors=SelectorAnnotations(
            use_type="nvidia.com/use-gputype",
            nouse_type="nvidia.com/nouse-gputype",
            use_uuid="nvidia.com/use-gpuuuid",
            nouse_uuid="nvidia.com/nouse-gpuuuid",
            mode="nvidia.com/vgpu-mode",
            numa_bind="nvidia.com/numa-bind",
        ),
        annotations=AnnotationKeys(
            node_register="hami.io/node-nvidia-register",
            node_handshake="hami.io/node-handshake",
            to_allocate="hami.io/vgpu-devices-to-allocate",
            allocated="hami.io/vgpu-devices-allocated",
        ),
        domains=["nvidia.com/"],
        # HAMi's nodeconfig entries are its NVIDIA device plugin's: their NVIDIA keys come to this plugin.
        node_entry_keys=dict(NODE_ENTRY_KEYS),
    )
