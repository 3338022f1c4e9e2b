"""The conformance pair (isolation/work-conserving-sharing, issue 18): a training loop beside a small-batch inference
loop at 50 + 50 under GPU_CORE_UTILIZATION_POLICY=default, on the fake libcuda (bench/turns.py --cases trainfer).

The training loop is GPU-bound and held at its limit; the inference loop is launch-bound (~50 % busy alone) and, waiting
behind its neighbour's slices, lends nothing (lendguard). Where the time went (docs/results/2026-12-06-fake-trainfer.md):
the square wave's off-phase (launch.c throttle, the resume credit) drained the training loop's whole queue, so for
14-20 % of its wall it had nothing on the GPU while the inference loop left most of the GPU idle between its kernels:
the fake GPU idle 11-17 %, the pair charged 84-94 %. Shared under default a held tenant now resumes as soon as its
credit covers its queued work (no resume credit): the same credit, spent as it comes."""

from __future__ import annotations

import re

import pytest

from .conftest import REAL_DRIVER, Workload
from .guard_runs import SLICED, charged_pct, finish_spin

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model")

TRAIN = ("spin", "20", "0", "3", "750")  # bench/turns.py's train case: 150 x 400 us + 600 x 20 us, a sync, 2 ms host
TRAIN_ENV = {"DRIVER_SPIN_MIX": "400:150:600", "DRIVER_SPIN_STEP_GAP_US": "2000"}
INFER = ("spin", "10", "12", "3", "195")  # 10 us kernels, 12 us of busy-waited host time each, a sync per 195
INFER_ENV = {"DRIVER_BUSY_GAP": "1", "FAKE_CUDA_SYNC_POLL_US": "10"}
HELD_IDLE = re.compile(r"; held (\d+) times, ([\d.]+) ms;.*; credit capped ([\d.]+) ms \(([\d.]+) ms held\), held with "
                       r"nothing queued ([\d.]+) ms")


def _setup(w: Workload, limit: int, policy: str, extra: dict[str, str]) -> None:
    w.env.update(FAKE_CUDA_GPU=str(w.tmp.parent / "gpu"), GPU_CORE_UTILIZATION_POLICY=policy, HAMI_SM_PERIOD_MS="100",
                 CUDA_DEVICE_SM_LIMIT=str(limit), HAMI_LAUNCH_STATS="1", **SLICED, **extra)


def _run(w: Workload, proc) -> dict:
    s = finish_spin(proc)
    return {"wall": s.wall, "share": s.share_pct, "switch": s.switch_pct, "charged": charged_pct(w, s), "err": s.err}


def _pair(a: Workload, b: Workload, policy: str) -> tuple[dict, dict]:
    _setup(a, 50, policy, TRAIN_ENV)
    _setup(b, 50, policy, INFER_ENV)
    procs = [a.start("ctx", "0", *TRAIN), b.start("ctx", "0", *INFER)]
    ra, rb = (_run(w, p) for w, p in zip((a, b), procs, strict=True))
    return ra, rb


@pytest.mark.fake_timing  # the inference loop is host-bound on the fake: its share moves with the host's load
def test_the_training_loop_beside_an_inference_loop_keeps_work_on_the_gpu(workload: Workload,
                                                                        second_workload: Workload) -> None:
    # Fake, this 2-core VM under other helpers' load, bench/turns.py trainfer 50 + 50 (interleaved rounds,
    # docs/results/2026-12-06-fake-trainfer.md): main 5646ac2 with only this counter added held the training loop with
    # nothing queued 410-594 ms of its 3 s (14-20 %), the fake GPU idle 11.5-14.6 %; this tree 6-10 % and 6.6-9.5 %.
    # On main itself the line has no such clause: the test fails there on that. The limit still holds: its charge at
    # most its limit plus what its neighbour may lend (50 - 44 - 3 at the most) and a point of noise.
    a, b = _pair(workload, second_workload, "default")
    m = HELD_IDLE.search(a["err"])
    assert m, a["err"]
    held_idle = 100 * float(m.group(5)) / 1e3 / a["wall"]
    idle = 100 - a["share"] - b["share"] - a["switch"] - b["switch"]
    print(f"trainfer 50 + 50: A charged {a['charged']:.1f} %, share {a['share']:.1f} %, held with nothing queued "
          f"{held_idle:.1f} %; B charged {b['charged']:.1f} %, share {b['share']:.1f} %; GPU idle {idle:.1f} %, "
          f"pair charged {a['charged'] + b['charged']:.1f} %")
    assert held_idle < 12, a["err"]
    assert idle < 12.5, (a, b)  # a floor: the A/B is the record's
    assert a["charged"] <= 50 + 6, a  # its limit, plus what its neighbour may lend (50 - 44 - 3 at the most)
    # the launch-bound tenant is kept out of turns by the judge (turns.c turn_judged): at most 60 % of its 3 s, no cuts
    t = re.search(r"; turns on ([\d.]+) ms, held \d+ times, [\d.]+ ms, longest [\d.]+ ms, (\d+) cut", b["err"])
    assert t and float(t.group(1)) < 1800 and t.group(2) == "0", b["err"]
