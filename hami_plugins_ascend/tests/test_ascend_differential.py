"""The differential table: generated requests (chip × memory × count × mode) placed through the plugin
(parser, HAMi admission rules, partition model, engine) must get the template, memory, device count,
split count and refusal reason that HAMi's rules *as written in the reference* give. The rules that depend on the
templates are applied on the node (its partition model), so they come after the node's device count and their
refusal is the engine's TemplateNotFit, mapped back to HAMi's code by its detail (``NODE_RULES``).

The oracle below is written from HAMi's documented rules (the ``vnpus`` table of HAMi's scheduler device
ConfigMap, the Ascend user guide and the device plugin's docs; see docs/hami-compatibility.md), with its own copy of the numbers, independent of ``chips.yaml`` and
``rules.py``, so a wrong number or rule on either side shows up as a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pytest
from hami_plugins_ascend.admission import AdmissionError

from hami_hal.engine import NodeState
from hami_hal.manager import Hal

# chipName, commonWord, memoryAllocatable, memoryCapacity, superPod, node profile, [(template, MiB)]
REFERENCE = [
    ("910A", "Ascend910A", 32768, 32768, False, "ascend-8x910a",
     [("vir02", 2184), ("vir04", 4369), ("vir08", 8738), ("vir16", 17476)]),
    ("910B2", "Ascend910B2", 65536, 65536, False, "ascend-8x910b2",
     [("vir03_1c_8g", 8192), ("vir06_1c_16g", 16384), ("vir12_3c_32g", 32768)]),
    ("910B3", "Ascend910B3", 65536, 65536, False, "ascend-8x910b3",
     [("vir05_1c_16g", 16384), ("vir10_3c_32g", 32768)]),
    ("910B4-1", "Ascend910B4-1", 65536, 65536, False, "ascend-8x910b4-1",
     [("vir05_1c_16g", 16384), ("vir10_3c_32g", 32768)]),
    ("910B4", "Ascend910B4", 32768, 32768, False, "ascend-8x910b4",
     [("vir05_1c_8g", 8192), ("vir10_3c_16g", 16384)]),
    ("310P3", "Ascend310P", 21527, 24576, False, "ascend-4x310p3",
     [("vir01", 3072), ("vir02", 6144), ("vir04", 12288)]),
    ("Ascend910", "Ascend910C", 65536, 65536, True, "ascend-16x910c",
     [("vir05_1c_16g", 16384), ("vir10_3c_32g", 32768)]),
]
#: Split counts the reference states outright (HAMi's Ascend device-template docs).
STATED_SPLIT = {"Ascend910B3": 4, "Ascend310P": 7, "Ascend910A": 15}
COUNTS = (1, 2, 3, 4, 8)
MODES = ("hard", "hard+core", "soft-on-template-node", "soft-on-soft-node")
SOFT = {"huawei.com/vnpu-mode": "hami-core"}


@dataclass(frozen=True)
class Outcome:
    refused: str | None = None
    devices: int = 0
    template: str | None = None
    memory_mib: int = 0


def oracle(ref, memory: int | None, count: int, mode: str, node_devices: int) -> Outcome:
    """HAMi's answer, from the reference's words."""
    _, _, alloc, cap, super_pod, _, templates = ref
    if mode == "hard+core":
        return Outcome(refused="CoreWithoutSoftMode")  # "-core is rejected without the annotation"
    if mode.startswith("soft"):
        if memory is not None and memory > cap:
            return Outcome(refused="MemoryInvalid")
        if super_pod and count > 1 and count % 2:
            return Outcome(refused="SuperPodOddCount")
        if count > node_devices:  # HAMi's Fit first checks the node has that many devices at all
            return Outcome(refused="NodeInsufficientDevice")
        if mode == "soft-on-template-node":
            return Outcome(refused="ModeNotFit")  # "a hami-core pod on a non-hami-core node is filtered out"
        if memory is not None and memory > alloc:
            # The reference gives soft mode no rounding: a share is bounded by the card's allocatable memory.
            return Outcome(refused="CardInsufficientMemory")
        if count > node_devices:
            return Outcome(refused="NodeInsufficientDevice")
        return Outcome(devices=count, template=None, memory_mib=alloc if memory is None else memory)
    # hard mode: "910C superPod: 1 is rounded to 2 and odd counts are rejected" (an odd count above 1 is refused
    # whatever the memory: HAMi says MultiDeviceVNPU where its table rounds the memory to a template, but both
    # refuse, and admission needs no templates to)
    if super_pod and count > 1 and count % 2:
        return Outcome(refused="SuperPodOddCount")
    if memory is None:  # no memory = the whole card
        if super_pod and count == 1:
            count = 2
        if count > node_devices:
            return Outcome(refused="NodeInsufficientDevice")
        return Outcome(devices=count, template=None, memory_mib=alloc)
    # With memory, everything below depends on the templates. HAMi's webhook decides it with its one table; here
    # the node does, with its own templates (a node's vnpus section may change them), so after the node's device
    # count. "The smallest template with memory >= request; above the largest template but <= capacity the whole
    # card (memoryAllocatable); anything larger is invalid."
    if count > node_devices:
        return Outcome(refused="NodeInsufficientDevice")
    fit = [(name, m) for name, m in templates if m >= memory]
    if fit:
        tpl, mem = min(fit, key=lambda t: t[1])
    elif memory <= cap:
        tpl, mem = None, alloc
    else:
        return Outcome(refused="MemoryInvalid")
    if tpl is not None and count > 1:
        return Outcome(refused="MultiDeviceVNPU")  # "-memory only works with a count of 1"
    if super_pod and tpl is None and count % 2:
        # HAMi's webhook rounds a count of 1 up to 2 here too; the node cannot change a pod's count (the kubelet
        # hands out what the pod asks), so hami-hal refuses it: the pod asks for 2
        return Outcome(refused="SuperPodOddCount")
    return Outcome(devices=count, template=tpl, memory_mib=mem)


#: HAMi's webhook codes for the template rules the node's partition model applies (TemplateNotFit, by detail).
NODE_RULES = {"no template holds": "MemoryInvalid", "serves requests for at most": "MultiDeviceVNPU",
              "go in multiples of": "SuperPodOddCount"}


def memories(ref) -> list[int | None]:
    _, _, alloc, cap, _, _, templates = ref
    out: set[int] = {1, 1000, alloc, cap, cap + 1, alloc + 1, 2 * cap}
    for _, m in templates:
        out |= {m - 1, m, m + 1}
    return [None, *sorted(out)]


def cases():
    for ref in REFERENCE:
        for mem in memories(ref):
            for count in COUNTS:
                for mode in MODES:
                    yield ref, mem, count, mode


CASES = list(cases())


def test_table_is_large_enough():
    assert len(CASES) >= 1000


@cache
def _inventory(node: str, soft: bool):
    """Discovered once per (node, mode) for the whole table; each case starts from an idle NodeState."""
    hal = Hal(entrypoints=False, modules=["hami_plugins_ascend.plugin"])
    return hal.discover("sim", sim_node=node, node_name="diff", config={"ascend": {"hami_vnpu_core": soft}})


def observe(hal, place, pod, ref, memory, count, mode) -> tuple[Outcome, int]:
    _, word, *_rest = ref
    node = ref[5]
    inv = _inventory(node, mode == "soft-on-soft-node")
    limits = {f"huawei.com/{word}": str(count)}
    if memory is not None:
        limits[f"huawei.com/{word}-memory"] = str(memory)
    if mode == "hard+core":
        limits[f"huawei.com/{word}-core"] = "30"
    anns = SOFT if mode.startswith("soft") else {}
    try:
        fit = place(inv, pod("diff", limits, anns))
    except AdmissionError as err:
        return Outcome(refused=err.code.value), len(inv.devices)
    if not fit.ok:
        reasons = {NODE_RULES.get(next((k for k in NODE_RULES if k in d), ""), r.value) for r, _u, d in fit.refusals}
        if not reasons and "NodeInsufficientDevice" in fit.reason:
            reasons = {"NodeInsufficientDevice"}
        return Outcome(refused="ModeNotFit" if "ModeNotFit" in reasons else
                       (sorted(reasons)[0] if len(reasons) == 1 else fit.reason)), len(inv.devices)
    slices = fit.allocation.slices()
    tpl = slices[0].template
    return Outcome(devices=len(slices), template=None if tpl in (None, "whole-card") else tpl,
                   memory_mib=slices[0].memory_mib), len(inv.devices)


@pytest.mark.parametrize("ref, memory, count, mode", CASES,
                         ids=[f"{r[1]}-{m}-{c}-{mo}" for r, m, c, mo in CASES])
def test_differential(hal, place, pod, ref, memory, count, mode):
    got, ndev = observe(hal, place, pod, ref, memory, count, mode)
    assert got == oracle(ref, memory, count, mode, ndev)


@pytest.mark.parametrize("ref", REFERENCE, ids=[r[1] for r in REFERENCE])
def test_split_count(hal, place, pod, ref):
    """Split count = memoryAllocatable / smallest template: exactly that many smallest vNPUs share a card."""
    _, word, alloc, _, _, node, templates = ref
    expected = alloc // templates[0][1]
    if word in STATED_SPLIT:
        assert expected == STATED_SPLIT[word]
    inv = _inventory(node, False)
    assert {d.partition.max_slots for d in inv.devices} == {expected}
    one = inv.model_copy(update={"devices": inv.devices[:1]})
    state = NodeState.from_inventory(one)
    small = {f"huawei.com/{word}": "1", f"huawei.com/{word}-memory": str(templates[0][1])}
    placed = 0
    while True:
        fit = place(one, pod(f"p{placed}", small), state)
        if not fit.ok:
            break
        state.commit(fit.allocation)
        placed += 1
        assert placed <= 64
    assert placed == expected


def test_910b4_1_uses_its_own_64gb_templates_hami_1497(hal, place, pod):
    """HAMi #1497: the 910B4-1 inherited the 910B4's 8/16 GB templates; a 16384 MiB request must get the
    16 GB vir05_1c_16g (not vir10_3c_16g), and 40000 MiB the whole 64 GB card (invalid on a 910B4)."""
    b41 = next(r for r in REFERENCE if r[1] == "Ascend910B4-1")
    b4 = next(r for r in REFERENCE if r[1] == "Ascend910B4")
    assert observe(hal, place, pod, b41, 16384, 1, "hard")[0] == Outcome(devices=1, template="vir05_1c_16g",
                                                                           memory_mib=16384)
    assert observe(hal, place, pod, b4, 16384, 1, "hard")[0] == Outcome(devices=1, template="vir10_3c_16g",
                                                                          memory_mib=16384)
    assert observe(hal, place, pod, b41, 8192, 1, "hard")[0].template == "vir05_1c_16g"
    assert observe(hal, place, pod, b41, 40000, 1, "hard")[0] == Outcome(devices=1, memory_mib=65536)
    assert observe(hal, place, pod, b4, 40000, 1, "hard")[0] == Outcome(refused="MemoryInvalid")
