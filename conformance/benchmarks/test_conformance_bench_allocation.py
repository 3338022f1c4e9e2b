"""Allocation decision latency per installed plugin, on its default simulated node (and real devices).

The engine decides with the plugin's own ``hami_hal_fit`` veto, exactly as in ``hami conformance run``;
the figure is one ``fit_pod`` on a node already half full, the case a scheduler meets most.
"""

from __future__ import annotations

import random

import pytest
from hami_conformance.checks.context import CheckContext

from hami_hal.errors import HalError
from hami_hal.manager import Hal
from hami_hal.models import ContainerRequest, PodRequest, ResourceRequest


def _rows(backend: str) -> list[tuple[str, str]]:
    hal = Hal()
    try:
        inv = hal.discover(backend)
    except HalError:
        return []
    return sorted({(d.vendor, d.model) for d in inv.devices})


SIM_ROWS = _rows("sim")


def _node(backend: str, vendor: str, model: str):
    hal = Hal()
    inv = hal.discover(backend)
    devs = [d for d in inv.devices if d.vendor == vendor and d.model == model and d.healthy]
    if not devs:
        pytest.skip(f"no {backend} {vendor} {model}")
    from hami_hal.engine import NodeState

    node = NodeState(inv.node, devs, inv.topology)
    plugin = hal.plugin_for_vendor(vendor)
    fams = plugin.vendor.resources
    word = next((f.common_word for f in fams if not f.whole_device), fams[0].common_word)
    return hal, node, devs, word


def _pod(i: int, vendor: str, word: str, mem: int, count: int = 1) -> PodRequest:
    req = ResourceRequest(vendor=vendor, common_word=word, count=count, memory_mib=mem, compute_percent=10)
    return PodRequest(name=f"bench-{i}", containers=[ContainerRequest(name="main", index=0, requests=[req])])


def _bench(benchmark, bench_record, backend: str, vendor: str, model: str) -> None:
    hal, node, devs, word = _node(backend, vendor, model)
    mem = CheckContext.small_memory(devs[0])
    veto = hal.fit
    rng = random.Random(7)
    # Half-fill the node first so the decision has real work to do.
    for i in range(len(devs) * 2):
        fit = node.fit_pod(_pod(i, vendor, word, mem), veto=veto)
        if fit.ok:
            node.commit(fit.allocation)
    pods = [_pod(1000 + i, vendor, word, mem, rng.choice([1, 1, min(2, len(devs))])) for i in range(64)]
    it = iter(range(10**9))

    def decide():
        return node.fit_pod(pods[next(it) % len(pods)], veto=veto)

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


@pytest.mark.parametrize(("vendor", "model"), SIM_ROWS or [pytest.param("none", "none", marks=pytest.mark.skip(
    reason="no plugin with simulated profiles installed"))])
def test_allocation_decision_latency_sim(benchmark, bench_record, vendor, model):
    _bench(benchmark, bench_record, "sim", vendor, model)


@pytest.mark.parametrize(("vendor", "model"), _rows("real") or [pytest.param("none", "none", marks=pytest.mark.skip(
    reason="no real accelerator on this machine"))])
def test_allocation_decision_latency_real(benchmark, bench_record, vendor, model):
    _bench(benchmark, bench_record, "real", vendor, model)
