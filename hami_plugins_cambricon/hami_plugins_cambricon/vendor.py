"""Cambricon's identity on the Kubernetes API, exactly as HAMi names it (docs/hami-compatibility.md; docs/vendors.md, Cambricon).

Unit note: HAMi's docs say one ``vmemory`` unit is 1 % of the card; HAMi's code multiplies by 256 MiB
(``MemoryFactor=256``), matching the vendor plugin flag ``min-dsmlu-unit=256``. We follow the code.
``vmemory``/``vcore`` apply only when ``vmlu == 1``; more than one vMLU takes whole cards.
"""

from __future__ import annotations

from hami_hal.models import AnnotationKeys, DeviceSetRules, ResourceFamily, SelectorAnnotations, VendorInfo

VENDOR = "cambricon"
COMMON_WORD = "MLU"
MEMORY_UNIT_MIB = 256
PROFILE_ANNOTATION = "CAMBRICON_DSMLU_PROFILE"
ASSIGNED_ANNOTATION = "CAMBRICON_DSMLU_ASSIGNED"


def vendor_info() -> VendorInfo:
    return VendorInfo(
        name=VENDOR,
        display_name="Cambricon MLU",
        resources=[
            ResourceFamily(
                common_word=COMMON_WORD, count="cambricon.com/vmlu", memory="cambricon.com/mlu.smlu.vmemory",
                memory_unit_mib=MEMORY_UNIT_MIB, cores="cambricon.com/mlu.smlu.vcore", default_cores=100,
                device_sets=DeviceSetRules(whole_device_above=1),
            )
        ],
        selectors=SelectorAnnotations(
            use_type="cambricon.com/use-mlutype", nouse_type="cambricon.com/nouse-mlutype",
            use_uuid="cambricon.com/use-gpuuuid", nouse_uuid="cambricon.com/nouse-gpuuuid",
        ),
        annotations=AnnotationKeys(to_allocate="hami.io/cambricon-mlu-devices-to-allocate",
                                   allocated="hami.io/cambricon-mlu-devices-allocated"),
        domains=["cambricon.com/"],
    )
