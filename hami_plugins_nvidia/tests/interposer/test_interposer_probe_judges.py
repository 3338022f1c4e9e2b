"""Judging of the work-conserving probe (issue 18's conformance behaviour) and the oversubscription answer,
with figures of the shape measure_work_conserving returns (the H200 values of 2026-12-04 among them)."""

from __future__ import annotations

import pytest

from hami_hal.models import Level
from hami_plugins_nvidia import probe


def _raw(native: list[float], limited: list[float]) -> dict:
    return {"native_pair_percent_of_solo": native, "limited_pair_percent_of_solo": limited,
            "limits_percent": [50, 50]}


@pytest.mark.parametrize(("native", "limited", "level"), [
    ([104.7, 54.5], [73.7, 58.2], Level.PARTIAL),        # H200 2026-12-04 run 3: fair, but 83 % of the pair kept
    ([70.0, 60.0], [66.0, 55.0], Level.SUPPORTED),       # 93 % kept, both above min(limit, native) - 5
    ([70.0, 60.0], [80.0, 40.0], Level.PARTIAL),         # kept, but inference fell below its 50 % - 5
    ([70.0, 60.0], [30.0, 28.0], Level.UNSUPPORTED),     # the turns waste the GPU and both lose
])
def test_work_conserving_judge(native: list[float], limited: list[float], level: Level) -> None:
    got, measurements, _note = probe._work_conserving(_raw(native, limited), "cond")
    assert got == level
    kept = next(m for m in measurements if m.name == "pair_throughput_kept")
    assert kept.value == pytest.approx(100 * sum(limited) / sum(native), abs=0.05)


def test_work_conserving_judge_shows_the_charged_gpu_time_without_changing_the_level() -> None:
    raw = _raw([70.0, 60.0], [66.0, 55.0]) | {"limited_pair_gpu_time_percent": [50.3, 41.2]}
    level, measurements, _note = probe._work_conserving(raw, "cond")
    assert level == Level.SUPPORTED
    gpu = {m.name: (m.value, m.target) for m in measurements if m.name.endswith("_gpu_time")}
    assert gpu == {"training_gpu_time": (50.3, "<= 55"), "inference_gpu_time": (41.2, "<= 55")}
    # a result recorded before the charge was reported judges as before, with no GPU-time rows
    _lvl, old, _ = probe._work_conserving(_raw([70.0, 60.0], [66.0, 55.0]), "cond")
    assert not [m for m in old if m.name.endswith("_gpu_time")]


def _by_rule(native: list[float], limited: list[float], demand: list[float], gpu: list[float] | None) -> dict:
    return _raw(native, limited) | {"solo_demand_percent": demand, "limited_pair_gpu_time_percent": gpu}


def test_h200_2026_12_04_pair_contends_and_is_fair_but_not_work_conserving() -> None:
    # main 181b96e on the H200: training charged 49.7 % (held at its cap), inference 38.4 % (never held), so
    # ~12 % of the GPU sat idle; throughputs 49.0 and 51.4 % of solo against a native pair summing ~133 %
    raw = _by_rule([75.0, 58.2], [49.0, 51.4], [99.0, 40.0], [49.7, 38.4])
    level, ms, note = probe._work_conserving(raw, "cond")
    assert level == Level.PARTIAL
    assert note.startswith("contended pair") and "work-conserving" in note and "88.1" in note
    got = {m.name: m for m in ms}
    assert got["pair_gpu_time"].value == pytest.approx(88.1) and got["pair_gpu_time"].target == ">= 95"
    assert got["training_gpu_time"].target == ">= 45" and got["inference_gpu_time"].target == ">= 35"
    assert got["pair_throughput_kept"].target is None  # a measurement only for a contended pair
    assert "contended" in got["pair_throughput_kept"].conditions
    assert got["inference_solo_demand"].value == 40.0


@pytest.mark.parametrize(("limited", "gpu", "level", "missed"), [
    ([62.0, 50.0], [58.0, 38.5], Level.SUPPORTED, ""),                  # lending: 96.5 % busy, guarantees held
    ([62.0, 44.0], [61.0, 34.0], Level.PARTIAL, "guarantees held"),      # inference got 34 < min(50, 40) - 5
    ([40.0, 30.0], [40.0, 30.0], Level.UNSUPPORTED, "work-conserving"),  # everything missed
])
def test_contended_pair_needs_guarantees_busy_gpu_and_shares(limited: list[float], gpu: list[float],
                                                             level: Level, missed: str) -> None:
    got, _ms, note = probe._work_conserving(_by_rule([75.0, 58.2], limited, [99.0, 40.0], gpu), "cond")
    assert got == level, note
    assert missed in note


def test_contended_pair_without_charged_gpu_time_is_unverified() -> None:
    got, _ms, note = probe._work_conserving(_by_rule([75.0, 58.2], [62.0, 50.0], [99.0, 40.0], None), "cond")
    assert got == Level.UNVERIFIED and "charged GPU time" in note


@pytest.mark.parametrize(("limited", "level"), [
    ([60.0, 58.0], Level.SUPPORTED),     # 92 % of the native pair kept, both above their floors
    ([52.0, 50.0], Level.PARTIAL),       # fair but 79 % kept: a fitting pair must keep 90 %
])
def test_fitting_pair_is_judged_by_the_kept_throughput(limited: list[float], level: Level) -> None:
    # two launch-bound programs, 30 + 40 % of the GPU alone: they fit, so the native pair's throughput is the bar
    got, ms, note = probe._work_conserving(_by_rule([66.0, 62.0], limited, [30.0, 40.0], [29.0, 38.0]), "cond")
    assert got == level
    assert note.startswith("fitting pair")
    assert next(m for m in ms if m.name == "pair_throughput_kept").target == ">= 90"


def test_out_of_range_demand_falls_back_to_the_fitting_rule_and_says_so() -> None:
    got, _ms, note = probe._work_conserving(_by_rule([70.0, 60.0], [66.0, 55.0], [-3.0, 400.0], None), "cond")
    assert got == Level.SUPPORTED and "no usable solo demand figures" in note


def test_probe_evidence_names_the_branch_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from hami_plugins_nvidia.interposer import probe as iprobe

    from hami_plugins_nvidia import interposer

    raw = _by_rule([75.0, 58.2], [49.0, 51.4], [99.0, 40.0], [49.7, 38.4]) | {
        "limited_pair_launch_stats": ["1000 measured launches (5.0 % coarse); held 3 times, 20.0 ms", None]}
    monkeypatch.setattr(iprobe, "measure_work_conserving", lambda *_a: raw)
    monkeypatch.setattr(interposer, "library_version", lambda: "test")
    prov = SimpleNamespace(simulated=False, label=lambda: "a recorded H200 result")
    dev = SimpleNamespace(provenance=prov, healthy=True, index=0, memory_mib=143771, uuid="GPU-x")
    res = probe.run_probe(dev, "isolation/work-conserving-sharing")
    assert res.level == Level.PARTIAL
    assert any(e.startswith("judged as a contended pair (solo demands sum 139.0 % > 95 %)") for e in res.evidence)
    assert any("88.1 % < 95 %" in e for e in res.evidence)
    stats = [e for e in res.evidence if "launch stats" in e]
    assert stats == ["training launch stats (the limited pair, the library's own accounting): 1000 measured "
                     "launches (5.0 % coarse); held 3 times, 20.0 ms"]  # the inference tenant printed none


def test_launch_stats_line_is_the_librarys_last_one_bounded() -> None:
    from hami_plugins_nvidia.interposer import probe as iprobe

    err = ("noise launch stats: not the library's\n[HAMI-vgpu Info]: launch stats: first\n"
           "[HAMI-vgpu Info]: launch stats: 10 measured launches (0.0 % coarse)  \n")
    assert iprobe.launch_stats_line(err) == "10 measured launches (0.0 % coarse)"
    assert iprobe.launch_stats_line("[HAMI-vgpu Warn]: something else\n") is None
    long = "[HAMI-vgpu Info]: launch stats: " + "x" * 10_000
    assert len(iprobe.launch_stats_line(long)) == iprobe.LAUNCH_STATS_MAX_CHARS
    assert probe._launch_stats_evidence("not a list") == [] and probe._launch_stats_evidence([3, ""]) == []


def test_oversubscription_is_reported_unsupported_with_the_reason() -> None:
    class _Dev:  # only what run_probe reads before answering
        pass

    res = probe.run_probe(_Dev(), "oversubscription/memory")
    assert res.level == Level.UNSUPPORTED
    assert "CUDA_OVERSUBSCRIBE" in res.evidence[0] and "not implemented" in res.evidence[0]
