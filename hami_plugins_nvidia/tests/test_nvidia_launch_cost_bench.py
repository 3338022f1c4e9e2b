"""The launch-cost bench's own arithmetic (bench/launch_cost.py): two-mode reporting of rates, launches per
step from the library's stats line, and the checks on its command-line values. No GPU needed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "launch_cost.py"


@pytest.fixture(scope="module")
def lc():
    spec = importlib.util.spec_from_file_location("hami_launch_cost_bench_under_test", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_rates_that_split_in_two_clusters_are_reported_as_two_modes(lc) -> None:
    # record 2, run 2 and run 5: the native inference loop at 121-138 or 188-264 passes/s in one call
    two = lc.modes([123.3, 121.4, 217.7, 138.0, 264.0])
    assert two["modes"] == 2
    assert two["low"] == {"median": 123.3, "n": 3} and two["high"] == {"median": 240.85, "n": 2}
    one = lc.modes([198.9, 188.3, 212.3, 220.0])
    assert one == {"modes": 1, "median": 205.6, "n": 4}
    assert lc.modes([None, None]) == {"modes": 0}
    assert lc.modes([150.0]) == {"modes": 1, "median": 150.0, "n": 1}


def test_launches_per_step_come_from_the_library_stats_line(lc) -> None:
    res = {"rate": 100.0, "seconds": 4.0, "launch_stats": "81000 measured launches (90.0 % coarse); per launch ..."}
    assert lc.launches_per_step(res) == pytest.approx(81000 / 405)
    assert lc.launches_per_step({"rate": 100.0, "seconds": 4.0}) is None  # native: no stats line
    s = lc.summary({"rate": 100.0, "step_ms": {"p50": 5.0}}, 200.0)
    assert s["host_us_per_launch"] == 25.0


def test_bad_command_line_values_name_the_option(lc) -> None:
    assert lc.parse_variant("p=csrc::HAMI_SM_PRECISE=1") == ("p", Path("csrc"), [], {"HAMI_SM_PRECISE": "1"})
    assert lc.parse_variant("w=csrc:HAMI_WATCHER_ALWAYS_HARVESTS") == ("w", Path("csrc"),
                                                                       ["HAMI_WATCHER_ALWAYS_HARVESTS"], {})
    for bad in ("nocsrc", "p=csrc::lower=1", "p=csrc::NOVALUE"):
        with pytest.raises(SystemExit, match="--variant"):
            lc.parse_variant(bad)
    assert lc.parse_pair_limits("50+50") == (50, 50, None)
    assert lc.parse_pair_limits("30+70x1") == (30, 70, 1)
    for bad in ("50", "50+", "0+50", "50+101", "30+70x0", "30+70xa"):
        with pytest.raises(SystemExit, match="--pair-limits"):
            lc.parse_pair_limits(bad)
    assert lc.parse_cores("2;6") == [{2}, {6}]
    assert lc.parse_cores("2,3;6,7") == [{2, 3}, {6, 7}]
    for bad in ("2", "2;2", "a;b", "2;"):
        with pytest.raises(SystemExit, match="--cores"):
            lc.parse_cores(bad)
