"""The unseen-variant generator (scheduler/benchmarks/gen_variants.py): each family reaches its share."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hami_scheduler.sim.trace import TracePod, default_trace_dir, load_pods, missing_files
from sched_trace_skip import TRACE_SKIP_REASON

from hami_hal.errors import InputError

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import gen_variants as gv  # noqa: E402

TRACE = default_trace_dir()
needs_trace = pytest.mark.skipif(
    bool(missing_files(TRACE, ("default", "gpuspec10", "gpuspec25", "multigpu40"))), reason=TRACE_SKIP_REASON
)


def base() -> tuple[TracePod, ...]:
    """A small default-like list: CPU-only, sharing, one-GPU and multi-GPU pods."""
    pods = [TracePod(f"c{i}", 12000, 1000, 0, 0) for i in range(20)]
    pods += [TracePod(f"s{i}", 3000, 1000, 1, (470, 810, 320)[i % 3]) for i in range(60)]
    pods += [TracePod(f"w{i}", 11000, 1000, 1, 1000) for i in range(60)]
    pods += [TracePod(f"m{i}", 40000, 1000, (2, 4, 8)[i % 3], 1000) for i in range(6)]
    return tuple(pods)


def share_pct(pods, pred) -> float:
    total = sum(p.gpu_request_milli for p in pods)
    return 100 * sum(p.gpu_request_milli for p in pods if pred(p)) / total


def test_multigpu_adds_multi_gpu_pods_until_their_share():
    out = gv.multigpu(base(), 40, random.Random(1))
    assert share_pct(out, lambda p: p.num_gpu > 1) >= 40
    assert list(out[: len(base())]) == list(base())  # every original pod kept
    assert all(p.num_gpu > 1 for p in out[len(base()):])


@pytest.mark.parametrize("pct", [10, 60, 100])
def test_gpushare_swaps_gpu_pods_both_ways(pct):
    out = gv.gpushare(base(), pct, random.Random(2))
    assert len(out) == len(base())
    assert sum(1 for p in out if p.num_gpu) == sum(1 for p in base() if p.num_gpu)
    got = share_pct(out, gv.is_share)
    assert (got >= pct) if pct > share_pct(base(), gv.is_share) else (got <= pct)


def test_cpu_only_share_of_all_pods():
    for per_mille, rng in ((50, 3), (250, 4)):
        out = gv.cpu_only(base(), per_mille, random.Random(rng))
        cpu = sum(1 for p in out if not p.num_gpu)
        assert abs(cpu / len(out) - per_mille / 1000) < 0.01
        assert [p for p in out if p.num_gpu] == [p for p in base() if p.num_gpu]


def test_gpuspec_constrains_the_asked_share_of_gpu_pods():
    specs = {1: [("T4",)], 2: [("G2",)], 4: [("G2",)], 8: [("G2",)]}
    out = gv.gpuspec(base(), 25, random.Random(5), specs)
    gpu = [p for p in out if p.num_gpu]
    assert sum(1 for p in gpu if p.gpu_spec) == round(0.25 * len(gpu))
    assert not any(p.gpu_spec for p in out if not p.num_gpu)


@pytest.mark.parametrize("name", ["multigpu", "gpushare101", "foo20", "cpu1000", "../x"])
def test_bad_variant_name_is_one_input_error(name):
    with pytest.raises(InputError, match="variant"):
        gv.make_variant(str(TRACE), name)


@needs_trace
def test_regenerated_public_variants_match_their_composition(tmp_path):
    """Derived from default by the documented method, multigpu40 and gpuspec25 land on the published mix."""
    for name, field in (("multigpu40", "multi_pct"), ("gpuspec25", "spec")):
        want = gv.composition(load_pods(str(TRACE), name))
        got = gv.composition(gv.make_variant(str(TRACE), name))
        assert abs(got[field] - want[field]) <= max(1, 0.02 * want[field]), (name, got, want)
        assert got["cpu_only"] == want["cpu_only"]
    path = gv.write_pods(gv.make_variant(str(TRACE), "cpu250"), tmp_path / "openb_pod_list_cpu250.csv")
    again = gv.load_pods_file(path)
    assert abs(gv.composition(again)["cpu_only"] / len(again) - 0.25) < 0.001
