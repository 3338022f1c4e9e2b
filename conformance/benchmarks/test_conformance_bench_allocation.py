"""Allocation decision latency per installed plugin, on its default simulated node (and real devices).

The engine decides with the plugin's rules as data (device sets, templates), exactly as in ``hami conformance run``;
the figure is one ``fit_pod`` on a node already half full, the case a scheduler meets most.
"""

from __future__ import annotations

import random

import pytest
from hami_conformance.checks.context import CheckContext
from hami_conformance.runner import sim_nodes

from hami_hal.engine import NodeState
from hami_hal.errors import HalError
from hami_hal.manager import Hal
from hami_hal.models import ContainerRequest, PodRequest, ResourceRequest


def _rows(backend: str) -> list[tuple[str, str, str | None]]:
    """(vendor, model, node profile) to benchmark: real devices, or every fault-free simulated profile."""
    hal = Hal()
    vendors = {p.vendor.name for p in hal.plugins.values()}
    try:
        profiles = sim_nodes(hal, None, vendors) if backend == "sim" else [None]
        rows = set()
        for profile in profiles:
            inv = Hal().discover(backend, sim_node=profile)
            rows |= {(d.vendor, d.model, profile) for d in inv.devices}
    except HalError:
        return []
    return sorted(rows, key=lambda r: (r[0], r[1], r[2] or ""))


def _node(backend: str, vendor: str, model: str, profile: str | None):
    hal = Hal()
    inv = hal.discover(backend, sim_node=profile)
    devs = [d for d in inv.devices if d.vendor == vendor and d.model == model and d.healthy]
    if not devs:
        pytest.skip(f"no {backend} {vendor} {model}")
    node = NodeState(inv.node, devs, inv.topology)
    plugin = hal.plugin_for_vendor(vendor)
    fams = plugin.vendor.resources
    word = next((f.common_word for f in fams if not f.whole_device), fams[0].common_word)
    return hal, node, devs, word


SIM_ROWS = _rows("sim")
NONE = [pytest.param("none", "none", None, marks=pytest.mark.skip(reason="nothing to benchmark here"))]


def _pod(i: int, vendor: str, word: str, mem: int, count: int = 1) -> PodRequest:
    req = ResourceRequest(vendor=vendor, common_word=word, count=count, memory_mib=mem, compute_percent=10)
    return PodRequest(name=f"bench-{i}", containers=[ContainerRequest(name="main", index=0, requests=[req])])


def _bench(benchmark, bench_record, backend: str, vendor: str, model: str, profile: str | None = None) -> None:
    hal, node, devs, word = _node(backend, vendor, model, profile)
    mem = CheckContext.small_memory(devs[0])
    rng = random.Random(7)
    # Half-fill the node first so the decision has real work to do.
    for i in range(len(devs) * 2):
        fit = node.fit_pod(_pod(i, vendor, word, mem))
        if fit.ok:
            node.commit(fit.allocation)
    pods = [_pod(1000 + i, vendor, word, mem, rng.choice([1, 1, min(2, len(devs))])) for i in range(64)]
    it = iter(range(10**9))

    def decide():
        return node.fit_pod(pods[next(it) % len(pods)])

    benchmark(decide)
    stats = benchmark.stats.stats
    prov = devs[0].provenance
    bench_record({
        "benchmark": "allocation decision latency", "vendor": vendor, "model": model, "devices": len(devs),
        "provenance": prov.label(), "unit": "µs",
        "median": round(stats.median * 1e6, 2), "mean": round(stats.mean * 1e6, 2),
        "min": round(stats.min * 1e6, 2), "max": round(stats.max * 1e6, 2), "rounds": stats.rounds,
    })
    benchmark.extra_info.update({"provenance": prov.label(), "devices": len(devs)})


@pytest.mark.parametrize(("vendor", "model", "profile"), SIM_ROWS or NONE)
def test_allocation_decision_latency_sim(benchmark, bench_record, vendor, model, profile):
    _bench(benchmark, bench_record, "sim", vendor, model, profile)


@pytest.mark.parametrize(("vendor", "model", "profile"), _rows("real") or NONE)
def test_allocation_decision_latency_real(benchmark, bench_record, vendor, model, profile):
    _bench(benchmark, bench_record, "real", vendor, model)
