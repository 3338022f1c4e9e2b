"""Ascend's identity on the Kubernetes API: one resource family per chip CommonWord, as HAMi names them
(``huawei.com/<CW>``, ``-memory`` in MiB, ``-core`` in percent, soft mode only; HAMi ``pkg/device/ascend``), with
HAMi's per-CommonWord annotation keys and the chip's multi-device rules as data the engine applies.
"""

from __future__ import annotations

from itertools import combinations

from hami_hal.models import (
    AnnotationKeys,
    AttributeMatch,
    DeviceSetRules,
    PodAnnotationRule,
    ResourceFamily,
    SelectorAnnotations,
    VendorInfo,
)

from .chips import DOMAIN, ChipConfig, chips
from .partitions import template_model
from .rules import MODE_ANNOTATION, SOFT_MODE, split_count

#: Device attribute the ``huawei.com/vnpu-mode`` pod annotation is matched against.
MODE_ATTRIBUTE = "vnpu_mode"
#: 910C dies per superPod node HAMi schedules (8 modules × 2 dies).
SUPERPOD_DIES = 16


def superpod_sets(dies: int = SUPERPOD_DIES) -> dict[int, list[list[int]]]:
    """Even counts take whole modules (die pairs 0-1, 2-3, ...): every union of ``count/2`` pairs."""
    pairs = [[2 * i, 2 * i + 1] for i in range(dies // 2)]
    return {2 * k: [sum(c, []) for c in combinations(pairs, k)] for k in range(1, dies // 2 + 1)}


def device_sets(chip: ChipConfig) -> DeviceSetRules | None:
    """On a superPod chip only 1 or an even number of dies, as whole module pairs (HAMi
    ``computeBestCombination910C``). "count > 1 takes whole cards" is not a device-set rule here: it
    holds in template mode only (the template-mode partition model refuses a sub-card template for several
    devices, ``template_max_count``), while hami-core mode gives multi-card quotas."""
    if chip.superPod:
        return DeviceSetRules(allowed_counts=[1, *range(2, SUPERPOD_DIES + 1, 2)], allowed_sets=superpod_sets())
    return None


def family(chip: ChipConfig) -> ResourceFamily:
    cw = chip.commonWord
    return ResourceFamily(
        common_word=cw, count=chip.resource, memory=chip.memory_resource, cores=chip.core_resource,
        # HAMi's Ascend request: no memory = the whole card (percentage 100); cores default 0 and the
        # webhook adds no cores for exclusive memory (that is NVIDIA's rule).
        default_memory_mib=0, default_cores=0, full_memory_means_full_cores=False,
        annotations=AnnotationKeys(
            node_register=f"hami.io/node-register-{cw}", node_handshake=f"hami.io/node-handshake-{cw}",
            to_allocate=f"hami.io/{cw}-devices-to-allocate", allocated=f"hami.io/{cw}-devices-allocated",
        ),
        device_sets=device_sets(chip),
        # a device known only from HAMi's register annotation: the chip's templates (only template-mode requests
        # fit it: the vnpu-mode rule below needs a device attribute such a device lacks)
        register_partition=template_model(chip, split_count(chip)),
        # HAMi's UUID filters are per chip (hami.io/use-<CW>-uuid); Ascend has no type selectors
        selectors=SelectorAnnotations(use_uuid=f"hami.io/use-{cw}-uuid", nouse_uuid=f"hami.io/no-use-{cw}-uuid"),
        pod_annotations=[PodAnnotationRule(key=MODE_ANNOTATION, attribute=MODE_ATTRIBUTE, match=AttributeMatch.DEVICE,
                                           allowed=[SOFT_MODE], reason="ModeNotFit")],
    )


def vendor_info(table: tuple[ChipConfig, ...] | None = None) -> VendorInfo:
    """One family per chip of the built-in table, then one per chip ``table`` (a node's, from HAMi's ``vnpus``
    section) adds. A built-in chip keeps its built-in family: a node may add families, never change one."""
    # HAMi's device-config.yaml describes the chips in its `vnpus` section: the node agent hands it to this plugin
    # (config.py reads it: the chip table per node, hamiVnpuCore)
    builtin = chips()
    words = {c.commonWord for c in builtin}
    added = [c for c in table or () if c.commonWord not in words]
    return VendorInfo(name="ascend", display_name="Huawei Ascend", resources=[family(c) for c in (*builtin, *added)],
                      domains=[f"{DOMAIN}/"], hami_sections=["vnpus"])
