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


def test_oversubscription_is_reported_unsupported_with_the_reason() -> None:
    class _Dev:  # only what run_probe reads before answering
        pass

    res = probe.run_probe(_Dev(), "oversubscription/memory")
    assert res.level == Level.UNSUPPORTED
    assert "CUDA_OVERSUBSCRIBE" in res.evidence[0] and "not implemented" in res.evidence[0]
