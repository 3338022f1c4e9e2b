"""A generated table of Hygon requests (model × names × count × memory × cores) through the parser and the
engine, against HAMi's Hygon rules as documented (an oracle with its own numbers), and each placed share
created as a vDCU through the fake hy-smi with the compute units the vendor plugin's rule gives.

HAMi's rules: cores default to 100 (exclusive), no memory = all of it, several DCUs = whole cards (one vDCU
per container), the split count bounds tenants. The ``hcu*`` and legacy ``dcu*`` names behave the same and
each writes its own CommonWord.
"""

from __future__ import annotations

import math
from functools import cache

import pytest

from hami_hal.engine import NodeState
from hami_hal.manager import Hal
from hami_hal.models import ContainerAllocation
from hami_hal.requests import parse_pod

# node profile, devices, memory MiB, compute units (from the vendors' model table, copied here on purpose)
NODES = [("hygon-2xz100", 2, 32768, 60), ("hygon-4xk100", 4, 65536, 120), ("hygon-8xk100-lc-e-ai", 8, 65536, 128)]
NAMES = [("hcu", "HCU"), ("dcu", "DCU")]
COUNTS = (1, 2, 3, 8)
MEMORIES = (None, 1, 4096, 32768, 65536, 70000)
CORES = (None, 0, 1, 33, 100)


def oracle(devices: int, total: int, count: int, mem: int | None, cores: int | None):
    if count > devices:
        return ("refused", "NodeInsufficientDevice")
    if count > 1:
        return ("placed", count, total, 100, True)
    m = total if mem is None else mem
    if m > total:
        return ("refused", "CardInsufficientMemory")
    c = 100 if cores is None else cores
    return ("placed", 1, m, c, c == 100)


CASES = [(n, p, c, m, k) for n in NODES for p in NAMES for c in COUNTS for m in MEMORIES for k in CORES]


def test_table_size():
    assert len(CASES) >= 700


@cache
def _hal_and_inventory(node: str):
    hal = Hal(entrypoints=False, modules=["hami_plugins_hygon.plugin"])
    return hal, hal.discover("sim", sim_node=node, node_name="t")


@pytest.mark.parametrize("node, names, count, mem, cores", CASES,
                         ids=[f"{n[0]}-{p[0]}-{c}-{m}-{k}" for n, p, c, m, k in CASES])
def test_hygon_rule(node, names, count, mem, cores):
    name, word, (profile, devices, total, cus) = names[0], names[1], node
    hal, inv = _hal_and_inventory(profile)
    limits = {f"hygon.com/{name}num": count}
    if mem is not None:
        limits[f"hygon.com/{name}mem"] = mem
    if cores is not None:
        limits[f"hygon.com/{name}cores"] = cores
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}
    fit = NodeState.from_inventory(inv).fit_pod(parse_pod(pod, inv.vendors, admit=hal.admit_request))
    want = oracle(devices, total, count, mem, cores)
    if want[0] == "refused":
        assert not fit.ok and want[1] in fit.reason
        return
    slices = fit.allocation.slices()
    got = ("placed", len(slices), slices[0].memory_mib, slices[0].compute_percent, slices[0].exclusive)
    assert got == want and {s.common_word for s in slices} == {word}
    # the share becomes a vDCU with max(1, ceil(cores% x CUs / 100)) compute units; whole cards need none
    dev = inv.device(slices[0].uuid)
    handle = hal.create_partition(dev, slices[0])
    try:
        if got[4] and got[2] == total:
            assert handle["vdevice"] is None
        else:
            assert handle["compute_units"] == max(1, math.ceil(got[3] * cus / 100))
            assert handle["memory_mib"] == got[2]
        edits = hal.container_edits(ContainerAllocation(name="c", index=0, slices=slices), inv.devices)
        assert edits.env["HIP_VISIBLE_DEVICES"] == ",".join(str(i) for i in range(len(slices)))
    finally:
        hal.destroy_partition(dev, handle)
