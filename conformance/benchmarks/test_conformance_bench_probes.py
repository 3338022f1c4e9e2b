"""The isolation figures each plugin's probe reports (overshoot, share error, launch overhead), with units.

Only real devices count: a simulated device has no probe worth recording. Each probe runs once (it is a
workload, not a micro-benchmark); its wall time is the benchmark figure and its measurements are kept as
given, in the result file and in pytest-benchmark's extra_info.
"""

from __future__ import annotations

import pytest
from hami_conformance.catalogue import default_catalogue

from hami_hal.errors import HalError
from hami_hal.manager import Hal

PROBES = [b.id for b in default_catalogue() if b.needs_probe]


def _real() -> list[tuple[str, str]]:
    try:
        inv = Hal().discover("real")
    except HalError:
        return []
    return sorted({(d.vendor, d.model) for d in inv.devices})


ROWS = _real()


@pytest.mark.parametrize("behaviour", PROBES)
@pytest.mark.parametrize(("vendor", "model"), ROWS or [pytest.param("none", "none", marks=pytest.mark.skip(
    reason="no real accelerator on this machine: probes only run on hardware"))])
def test_probe_figures(benchmark, bench_record, vendor, model, behaviour):
    hal = Hal()
    inv = hal.discover("real")
    dev = next((d for d in inv.devices if d.vendor == vendor and d.model == model and d.healthy), None)
    if dev is None:
        pytest.skip(f"no healthy {vendor} {model}")
    result = benchmark.pedantic(hal.probe, args=(dev, behaviour), rounds=1, iterations=1)
    if result is None:
        pytest.skip(f"{vendor} has no probe for {behaviour}")
    figures = [m.model_dump() for m in result.measurements]
    benchmark.extra_info.update({"level": result.level.value, "measurements": figures,
                                 "provenance": dev.provenance.label()})
    bench_record({"benchmark": "probe", "behaviour": behaviour, "vendor": vendor, "model": model,
                  "provenance": dev.provenance.label(), "level": result.level.value, "measurements": figures,
                  "evidence": result.evidence})
    assert all(m.unit for m in result.measurements), "every figure needs a unit"
