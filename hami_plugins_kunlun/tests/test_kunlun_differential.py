"""Differential table: ≥ 500 generated Kunlunxin requests whose chosen cards, slice size or refusal must
equal HAMi's rules as the reference writes them (oracle: ``kunlun_hami_rules``, brute force, no shared
code). The table is committed data (``data/kunlun-differential.jsonl``); regenerate it with
``python hami_plugins_kunlun/tests/test_kunlun_differential.py``.
"""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path

import kunlun_hami_rules as hami
import pytest
from hami_plugins_kunlun.slices import TEMPLATE_NAMES, implied_cores
from hami_plugins_kunlun.vendor import vendor_info

from hami_hal.engine import NodeState
from hami_hal.models import ContainerAllocation, DeviceSlice, PodAllocation
from hami_hal.requests import parse_pod
from hami_hal.testing import isolated_hal, sim_inventory
from hami_plugins_kunlun import plugin

TABLE = Path(__file__).parent / "data" / "kunlun-differential.jsonl"
ROWS = 600
SEED = 20261204
MEMORIES = [None, 1, 8192, 24575, 24576, 24577, 40000, 49152, 49153, 70000, 98304, 200000]


def _state(rng: random.Random) -> dict[int, list]:
    out = {}
    busy = rng.random()
    for i in range(8):
        r = rng.random()
        if r > busy:
            out[i] = ["free", 0, 0]
        elif r < busy / 3:
            out[i] = ["whole", 0, 0]
        else:
            size = rng.choice([24576, 49152])
            out[i] = ["split", size, rng.randint(1, hami.CARD // size - (0 if rng.random() < 0.3 else 1) or 1)]
    return out


def generate(n: int = ROWS, seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for k in range(n):
        state = _state(rng)
        family = "whole" if k % 2 == 0 else "vxpu"
        count = rng.randint(1, 8)
        memory = None if family == "whole" else rng.choice(MEMORIES)
        cards = {i: tuple(v) for i, v in state.items()}
        if family == "whole":
            got = hami.whole({i for i, (kind, _, _) in cards.items() if kind == "free"}, count)
            expect = None if got is None else {"cards": got, "size": hami.CARD}
        else:
            got = hami.vxpu(cards, count, memory)
            expect = None if got is None else {"cards": got[0], "size": got[1]}
        if expect is None:
            expect = {"refused": hami.refusal(family, cards, count, memory)}
        rows.append({"id": k, "state": {str(i): v for i, v in state.items()}, "family": family,
                     "count": count, "memory": memory, "expect": expect})
    return rows


def _load() -> list[dict]:
    return [json.loads(line) for line in TABLE.read_text().splitlines() if line.strip()]


def test_table_is_the_reference_rules():
    """The committed table is exactly what the oracle gives (so reviewing the table reviews the rules)."""
    assert _load() == generate()
    rows = _load()
    assert len(rows) >= 500
    # The table exercises every outcome class, not only easy accepts.
    refused = [r for r in rows if "refused" in r["expect"]]
    assert len(refused) >= 100 and len(rows) - len(refused) >= 100
    assert {r["expect"]["refused"] for r in refused} == {"count", "handles", "capacity"}
    assert {r["expect"]["size"] for r in rows if "size" in r["expect"]} == {24576, 49152, 98304}
    # ... and the hard rules decide real rows: the 32-handle budget, and least fragmentation over lowest indexes.
    by_budget = [r for r in rows if r["family"] == "vxpu" and hami.vxpu(
        {int(i): tuple(v) for i, v in r["state"].items()}, r["count"], r["memory"], None) != (
        None if "refused" in r["expect"] else (r["expect"]["cards"], r["expect"]["size"]))]
    by_fragmentation = [r for r in rows if r["family"] == "whole" and "cards" in r["expect"] and r["count"] < 8
                        and r["expect"]["cards"] != _lowest_in_a_group(r)]
    assert len(by_budget) >= 10 and len(by_fragmentation) >= 10


def _lowest_in_a_group(row: dict) -> list[int] | None:
    free = sorted(int(i) for i, v in row["state"].items() if v[0] == "free")
    for group in (range(4), range(4, 8)):
        avail = [i for i in free if i in group]
        if len(avail) >= row["count"]:
            return avail[: row["count"]]
    return None


@cache
def _hal():
    return isolated_hal(plugin)


@cache
def _devices():
    inv = sim_inventory(_hal(), "kunlun-8xp800")
    return inv.devices, inv.topology


def _node(state: dict[str, list]) -> NodeState:
    devices, topo = _devices()
    node = NodeState("kunlun-node", devices, topo)
    by_index = {d.index: d for d in devices}
    for idx, (kind, size, used) in state.items():
        dev = by_index[int(idx)]
        if kind == "free":
            continue
        if kind == "whole":
            slices = [DeviceSlice(vendor="kunlun", uuid=dev.uuid, device_index=dev.index, common_word="kunlun",
                                  memory_mib=dev.memory_mib, compute_percent=100, exclusive=True)]
        else:
            slices = [DeviceSlice(vendor="kunlun", uuid=dev.uuid, device_index=dev.index, common_word="XPU",
                                  memory_mib=size, compute_percent=implied_cores(size),
                                  template=TEMPLATE_NAMES[size]) for _ in range(used)]
        node.commit(PodAllocation(namespace="default", name=f"held-{idx}", node=node.name,
                                  containers=[ContainerAllocation(name="c", index=0, slices=slices)]))
    return node


def _pod(row: dict) -> dict:
    if row["family"] == "whole":
        limits = {"kunlunxin.com/xpu": row["count"]}
    else:
        limits = {"kunlunxin.com/vxpu": row["count"]}
        if row["memory"] is not None:
            limits["kunlunxin.com/vxpu-memory"] = row["memory"]
    return {"kind": "Pod", "metadata": {"name": f"row-{row['id']}"},
            "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}


def _engine_outcome(row: dict) -> dict:
    node = _node(row["state"])
    # The plugin's admission (HAMi MutateAdmission) aligns memory first, as hami allocate and the scheduler do.
    fit = node.fit_pod(parse_pod(_pod(row), [vendor_info()], admit=_hal().admit_request))
    if not fit.ok:
        if "allows 1, 2, 4, 8" in fit.reason:
            return {"refused": "count"}
        return {"refused": "handles" if "kunlun-xpu-handles" in fit.reason else "capacity"}
    slices = fit.allocation.containers[0].slices
    by_uuid = {d.uuid: d.index for d in _devices()[0]}
    sizes = {s.memory_mib for s in slices}
    assert len(sizes) == 1
    return {"cards": sorted(by_uuid[s.uuid] for s in slices), "size": sizes.pop()}


@pytest.mark.parametrize("row", _load(), ids=lambda r: f"row{r['id']}-{r['family']}")
def test_row(row):
    assert _engine_outcome(row) == row["expect"]


if __name__ == "__main__":
    TABLE.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in generate()))
    print(f"wrote {ROWS} rows to {TABLE}")
