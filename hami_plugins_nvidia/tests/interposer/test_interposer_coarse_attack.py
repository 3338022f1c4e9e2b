"""A phase-shifting tenant against coarse measurement (issue 18 audit): coarse launches are charged the average
per launch of the last precise window, and the rest of their spans is doubt, judged by the next precise window.
A tenant that controls its kernels can launch tiny ones back to back around the windows and long ones in the
coarse phases. A coarse phase starts when a window completes (>= 128 launches, >= 2 ms) and lasts 100 ms, so a
program with a ~100 ms period falls into step by itself: its windows see the tiny kernels, which confirm the
tiny estimate, and the long kernels' doubt was dropped. On this fake, 30 % `force`, alone, tiny bursts of
8-12 ms (3 us kernels) then 86-90 ms of 1 ms kernels synchronised one by one: 35.8-39.2 % of the GPU, charged
0.82-0.90 x the GPU time it got. Now the doubt is forgiven only as far as host gaps like the window's explain
it (launch.c verify()): 32.6-32.9 %, charged 1.01-1.02 x. Judged by the fake's own accounting of the process's
GPU time (FAKE_CUDA_GPU), not by wall-clock figures.

A tenant that tells the modes apart does better: the windows' host gaps forgive as much doubt as it likes (1 us
kernels with 40 us of host time after each "explain" 60 us of doubt per coarse launch). driver_app `steer calls`
watches the library's event records per launch (what a tenant that wraps its own libcuda sees; a launch's own
host time tells too, precise ~0.9 us against ~0.2 us coarse on the fake): on main b35584f, 30 % `force`, alone:
66-78 % of the GPU, charged 0.03-0.05 x it. A random phase length does not help against it (73.6 %, 0.05 x: it
reacts to the mode, not to a clock). Now coarse launches are sampled at random (1 in 32, measured alone) and a
verification charges the phase's launches at the samples' average (launch.c coarse_sample, verify()):
~32 %, charged ~1.0 x."""

from __future__ import annotations

import pytest

from .conftest import REAL_DRIVER, Workload
from .test_interposer_share import _charged_ms, _shared

pytestmark = [
    pytest.mark.skipif(REAL_DRIVER, reason="needs the fake device's shared GPU model"),
]

LIMIT = 30
# (tiny burst, long part) in seconds: periods of 96-98 ms, close to the 100 ms coarse phase plus its window
PATTERNS = (("0.010", "0.088"), ("0.012", "0.086"), ("0.008", "0.090"))
WARM = ("spin", "3", "3000", "0.8", "1000")  # nearly idle: the bucket fills, a window verifies, coarse begins


def _attack(w: Workload, burst: str, long: str) -> tuple[float, float, float]:
    """GPU time the fake gave the attacker (ms), what it was charged (ms), and the wall time (s)."""
    args = ["ctx", "0", *WARM]
    for _ in range(int(4 / (float(burst) + float(long)))):
        args += ["spin", "3", "0", burst, "1000", "spin", "1000", "0", long, "1"]
    r = w.run(*args, timeout=60)
    assert r.returncode == 0, r.stderr
    spins = r.values("spin")[1:]  # the warm-up is not counted: it is below the limit
    assert spins and all(words[0] == "0" for words in spins), r.stderr
    secs = float(spins[-1][2]) - float(spins[0][1])
    gpu_ms = sum(float(words[3]) for words in spins) * 1e3
    return gpu_ms, _charged_ms(w), secs


@pytest.mark.fake_timing
def test_tiny_kernels_in_the_windows_long_ones_in_coarse_phases_do_not_beat_the_limit(workload: Workload) -> None:
    _shared(workload, CUDA_DEVICE_SM_LIMIT=str(LIMIT), DRIVER_BUSY_GAP="1")
    gpu = charged = secs = 0.0
    runs = []
    for burst, long in PATTERNS:
        workload.tmp.joinpath("region").unlink(missing_ok=True)  # a fresh container each time: a full bucket
        g, c, s = _attack(workload, burst, long)
        runs.append((burst, long, round(100 * g / (s * 1e3), 1), round(c / g, 2)))
        gpu, charged, secs = gpu + g, charged + c, secs + s
    # charged what it got (the warm-up's charge is in `charged` too: a few ms), and its share near its limit
    assert charged >= 0.97 * gpu, runs
    assert 100 * gpu / (secs * 1e3) <= LIMIT + 5, runs


# (coarse kernel us, launches between syncs, window gap us): 1 us kernels in the windows
STEERING = (("50", "20", "40"), ("200", "5", "150"))


def steer_share_and_ratio(workload: Workload, mode: str, long_us: str, every: str, gap: str) -> tuple[float, float]:
    """One steering run of driver_app in a fresh container (a full bucket): the share of the GPU the fake gave its
    steered part (%) and its charge over the GPU time the fake gave the whole run."""
    workload.tmp.joinpath("region").unlink(missing_ok=True)
    r = workload.run("ctx", "0", *WARM, "steer", mode, long_us, every, "1", gap, "2.5", "0", "0", timeout=60)
    assert r.returncode == 0, r.stderr
    words = r.values("steer")[0]
    warm_gpu = float(r.values("spin")[0][3])
    assert words[0] == "0" and int(words[5]) >= 10, (words, r.stderr)  # it did switch between its parts
    secs, gpu_ms = float(words[2]) - float(words[1]), float(words[3]) * 1e3
    charged = _charged_ms(workload)
    return round(100 * gpu_ms / (secs * 1e3), 1), round(charged / (gpu_ms + warm_gpu * 1e3), 2)


@pytest.mark.fake_timing
def test_a_tenant_that_sees_the_mode_does_not_steer_long_kernels_past_the_samples(workload: Workload) -> None:
    _shared(workload, CUDA_DEVICE_SM_LIMIT=str(LIMIT), DRIVER_BUSY_GAP="1")
    runs = [(long_us, *steer_share_and_ratio(workload, "calls", long_us, every, gap))
            for long_us, every, gap in STEERING]
    # main: 66-78 % of the GPU, charged 0.03-0.05 x; sampled: ~32 %, ~1.0 x on an idle box, up to 37 %, 0.93 x on
    # one loaded by a parallel test run (CI's 2 cores, another suite beside it); the bound fails main by 24 points
    for _, share, ratio in runs:
        assert ratio >= 0.85, runs
        assert share <= LIMIT + 12, runs


def test_a_tenant_that_sees_the_mode_is_charged_most_of_its_gpu_time(workload: Workload) -> None:
    # CI's guard for the steering hole (host-independent): one steering run, judged by its charge alone. main
    # b35584f charged it 0.03-0.05 x the GPU time the fake gave it; the samples ~1.0 x (0.93 x seen on a loaded box).
    # A loaded host only lengthens the host time around the tenant's launches: its windows' host gaps forgive a
    # little more doubt, which is why the bound sits at 0.6, ten times what the hole charged.
    _shared(workload, CUDA_DEVICE_SM_LIMIT=str(LIMIT), DRIVER_BUSY_GAP="1")
    share, ratio = steer_share_and_ratio(workload, "calls", *STEERING[0])
    print(f"coarse steer calls: {share} % of the fake GPU, charged {ratio} x")
    assert ratio >= 0.6, (share, ratio)
