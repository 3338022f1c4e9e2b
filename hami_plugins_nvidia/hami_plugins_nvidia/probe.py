"""Conformance probes: run the CUDA interposer's measurement workloads on a real GPU.

A simulated GPU never proves isolation, so simulated devices get None (the suite records
``unverified``). The interposer package is optional: without it there is no probe either.
Each behaviour is judged here against the targets of the interposer's issue, and every figure carries
its unit and target so the suite can re-check it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from hami_hal.models import Device, Level, Measurement, ProbeResult

#: The compute limit the share probe runs at, and how far the achieved share may miss it.
COMPUTE_PROBE_PERCENT = 30
COMPUTE_TOLERANCE_POINTS = 5.0
#: Launch-bound loop with no limits: at most 2 % slower than native.
LAUNCH_RATIO_MAX = 1.02
#: CUDA_TASK_PRIORITY, while a priority-0 and a priority-1 matmul loop overlap: the high one keeps at least
#: 80 % of its solo throughput and the low one gets at most 30 % of its own. The equal-priority baseline must
#: give each 35-65 % (time-slicing), or the probe cannot tell priority from no priority: unverified.
PRIORITY_HIGH_MIN_PERCENT = 80.0
PRIORITY_LOW_MAX_PERCENT = 30.0
PRIORITY_EQUAL_PERCENT = (35.0, 65.0)
#: A high-priority share this many points above the equal baseline's mean shows priority has some effect.
PRIORITY_EFFECT_POINTS = 10.0
#: Work-conserving sharing (issue 18), by the issue's own rule. Each program's solo demand (GPU time it is
#: charged alone, unlimited) classifies the pair: FITTING when the demands add up to at most 95 % of the GPU,
#: CONTENDED otherwise. A fitting pair under 50 + 50 keeps at least 90 % of what the same pair achieves natively
#: (sum of each one's share of its solo throughput), and neither falls more than 5 points below the smaller of
#: its limit and its native-pair share. A contended pair cannot keep 90 % of a native pair that overlaps on the
#: GPU beyond its time (the native pair of the H200 summed 133 % of the solos): there each tenant's charged GPU
#: time must reach min(its limit, its solo demand) - 5 (the guarantees hold), the charged times must add up to
#: at least 95 % (the GPU was not left idle while a tenant was held: work-conserving), and each throughput share
#: must reach min(its limit, its native-pair share) - 5; the kept fraction is reported, with no target.
#: A contended pair that misses those bars is still supported when it meets them scaled to the GPU time the pair
#: can keep busy (A, see _achievable_gpu_time: two JAX programs natively keep the GPU 89.9 % busy, H100 record
#: 14), with two checks that scaling needs: GPU time splits by the limits among the tenants that want their limit,
#: and the pair keeps >= 90 % of the native pair's busy time (throughput, the outside view of the charges).
WORK_CONSERVING_LIMITS = (50, 50)
WORK_CONSERVING_SUM_MIN = 0.90
WORK_CONSERVING_TOLERANCE_POINTS = 5.0
WORK_CONSERVING_FIT_PERCENT = 95.0
WORK_CONSERVING_BUSY_MIN_PERCENT = 95.0
#: Why oversubscription/memory is unsupported: a fact of the library's design, not a measurement.
OVERSUBSCRIPTION_REASON = (
    "libvgpu.so holds every allocation path to CUDA_DEVICE_MEMORY_LIMIT and never spills to host memory; "
    "CUDA_OVERSUBSCRIBE (set by HAMi's device plugin when deviceMemoryScaling > 1) is not implemented, as in "
    "HAMi-core: a limit above physical memory only lets allocations reach the driver's own out-of-memory")


def _memory_hard(raw: dict, cond: str) -> tuple[Level, list[Measurement], str]:
    overshoot = max(0.0, raw["largest_allocation_mib"] - raw["limit_mib"])
    ms = [
        Measurement(name="memory_limit", value=raw["limit_mib"], unit="MiB", conditions=cond),
        Measurement(name="largest_allocation", value=raw["largest_allocation_mib"], unit="MiB", conditions=cond),
        Measurement(name="memory_overshoot", value=overshoot, unit="MiB", conditions=cond, target="<= 0"),
    ]
    ok = raw["within_limit"] and raw["oom_is_framework_oom"]
    note = f"at the limit the framework raised: {raw['oom_error'][:160]}"
    return (Level.SUPPORTED if ok else Level.UNSUPPORTED), ms, note


def _reported_total(raw: dict, cond: str) -> tuple[Level, list[Measurement], str]:
    error = raw["reported_total_mib"] - raw["limit_mib"]
    ms = [
        Measurement(name="reported_total", value=raw["reported_total_mib"], unit="MiB", conditions=cond),
        Measurement(name="memory_limit", value=raw["limit_mib"], unit="MiB", conditions=cond),
        Measurement(name="reported_total_error", value=abs(error), unit="MiB", conditions=cond, target="<= 0"),
    ]
    return (Level.SUPPORTED if error == 0 else Level.UNSUPPORTED), ms, ""


def _compute_share(raw: dict, cond: str) -> tuple[Level, list[Measurement], str]:
    err = abs(raw["error_points"])
    ms = [
        Measurement(name="compute_limit", value=raw["limit_percent"], unit="%", conditions=cond),
        Measurement(name="achieved_share", value=raw["achieved_percent"], unit="%", conditions=cond),
        Measurement(name="compute_share_error", value=err, unit="points", conditions=cond,
                    target=f"<= {COMPUTE_TOLERANCE_POINTS:g}"),
        Measurement(name="native_throughput", value=raw["native_tflops"], unit="TFLOP/s", conditions=cond),
        Measurement(name="limited_throughput", value=raw["limited_tflops"], unit="TFLOP/s", conditions=cond),
    ]
    return (Level.SUPPORTED if err <= COMPUTE_TOLERANCE_POINTS else Level.PARTIAL), ms, ""


def _launch_overhead(raw: dict, cond: str) -> tuple[Level, list[Measurement], str]:
    ratio = raw["ratio_median"]
    ms = [
        Measurement(name="launch_time_ratio", value=ratio, unit="ratio", conditions=cond,
                    target=f"<= {LAUNCH_RATIO_MAX:g}"),
        Measurement(name="native_launch_time", value=raw["native_us_per_launch_median"], unit="us",
                    conditions=cond),
        Measurement(name="preloaded_launch_time", value=raw["preloaded_us_per_launch_median"], unit="us",
                    conditions=cond),
    ]
    return (Level.SUPPORTED if ratio <= LAUNCH_RATIO_MAX else Level.PARTIAL), ms, ""


def _priority(raw: dict, cond: str) -> tuple[Level, list[Measurement], str]:
    high, low = raw["high_percent_of_solo"], raw["low_percent_of_solo"]
    equal = [float(x) for x in raw["equal_percent_of_solo"]]
    if len(equal) != 2:
        raise KeyError("equal_percent_of_solo (two workers)")
    eq_lo, eq_hi = PRIORITY_EQUAL_PERCENT
    ms = [
        Measurement(name="high_priority_share", value=high, unit="% of solo", conditions=cond,
                    target=f">= {PRIORITY_HIGH_MIN_PERCENT:g}"),
        Measurement(name="low_priority_share", value=low, unit="% of solo", conditions=cond,
                    target=f"<= {PRIORITY_LOW_MAX_PERCENT:g}"),
        Measurement(name="equal_priority_share_min", value=min(equal), unit="% of solo", conditions=cond,
                    target=f">= {eq_lo:g}"),
        Measurement(name="equal_priority_share_max", value=max(equal), unit="% of solo", conditions=cond,
                    target=f"<= {eq_hi:g}"),
        Measurement(name="solo_throughput_high", value=raw["solo_tflops"][0], unit="TFLOP/s", conditions=cond),
        Measurement(name="solo_throughput_low", value=raw["solo_tflops"][1], unit="TFLOP/s", conditions=cond),
        Measurement(name="overlap_window", value=raw["overlap_s"], unit="s", conditions=cond),
    ]
    if not all(eq_lo <= x <= eq_hi for x in equal):
        return Level.UNVERIFIED, ms, (f"the equal-priority baseline gave {equal[0]:.1f} % and {equal[1]:.1f} %, "
                                      "so the probe cannot tell priority from time-slicing")
    if high >= PRIORITY_HIGH_MIN_PERCENT and low <= PRIORITY_LOW_MAX_PERCENT:
        return Level.SUPPORTED, ms, ""
    if high - sum(equal) / 2 >= PRIORITY_EFFECT_POINTS:
        return Level.PARTIAL, ms, "priority has an effect but misses its targets"
    return Level.UNSUPPORTED, ms, "the high-priority process did no better than at equal priority"


#: What a behaviour's figures must show, said in its evidence.
CRITERIA = {
    "isolation/work-conserving-sharing": (
        f"under {WORK_CONSERVING_LIMITS[0]} + {WORK_CONSERVING_LIMITS[1]}, a pair whose solo demands (charged GPU "
        f"time alone, unlimited) add up to <= {WORK_CONSERVING_FIT_PERCENT:g} % fits: pass when it keeps >= "
        f"{100 * WORK_CONSERVING_SUM_MIN:g} % of the native pair's summed shares and each program >= min(its limit, "
        f"its native-pair share) - {WORK_CONSERVING_TOLERANCE_POINTS:g} points, one of the two: partial; a pair "
        f"above it contends: pass when each tenant's charged GPU time >= min(its limit, its solo demand) - "
        f"{WORK_CONSERVING_TOLERANCE_POINTS:g}, the charged times add up to >= "
        f"{WORK_CONSERVING_BUSY_MIN_PERCENT:g} % (work-conserving) and each throughput share >= min(its limit, its "
        f"native-pair share) - {WORK_CONSERVING_TOLERANCE_POINTS:g}, some of them: partial, none: unsupported "
        "(kept reported without a target); a contended pair that misses them passes when it meets them scaled to "
        "the GPU time the pair can keep busy, A = min(100, the larger of the native and the limited pair's sum of "
        "throughput share x solo demand) (charged >= min(limit, demand) x A/100 - "
        f"{WORK_CONSERVING_TOLERANCE_POINTS:g}, sum >= {WORK_CONSERVING_BUSY_MIN_PERCENT:g} % of A), each tenant "
        "whose demand reaches its limit gets >= its limit's share of the pair's charged time - "
        f"{WORK_CONSERVING_TOLERANCE_POINTS:g} points, and the pair keeps >= {100 * WORK_CONSERVING_SUM_MIN:g} % of "
        "the native pair's busy time (throughput x demand); results without solo demands: judged by the fitting "
        "rule, said so"),
    "isolation/priority": (f"pass: while both run, high-priority throughput >= {PRIORITY_HIGH_MIN_PERCENT:g} % and "
                           f"low-priority <= {PRIORITY_LOW_MAX_PERCENT:g} % of each one's solo throughput; the "
                           f"equal-priority baseline must give each {PRIORITY_EQUAL_PERCENT[0]:g}-"
                           f"{PRIORITY_EQUAL_PERCENT[1]:g} % (else unverified); high-priority share >= "
                           f"{PRIORITY_EFFECT_POINTS:g} points above the baseline's mean without the targets: partial"),
}

def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0


def _pair_busy(shares: list[float], demand: list[float]) -> float:
    """A pair's GPU busy time (% of the window) estimated from its throughput: sum of share_i (% of tenant i's solo
    throughput) x solo demand_i / 100. Assumes each step of a program costs the GPU what it costs alone, so its GPU
    time scales with its throughput; time the GPU spends switching contexts or running a kernel slower beside a
    neighbour (caches, clocks) is not counted, so the figure is the pair's useful GPU time, at most its busy time."""
    return sum(s * d for s, d in zip(shares, demand, strict=True)) / 100


def _achievable_gpu_time(native: object, limited: list[float], demand: list[float]) -> dict | None:
    """The GPU time a contended pair can keep busy, A (% of the window): min(100, the larger of the native pair's
    and the limited pair's busy estimate, _pair_busy). The native pair is the reference the issue names ("the
    unlimited pair"); the limited pair's own throughput is a second witness of what the GPU can be kept busy with
    (CUDA graphs, H100 record 14: the native pair reaches 29.5 + 29.5 % of solo, an estimated 52.5 %, the library's
    pair 27.7 + 63.1, 80.7 %), so a pair is never judged against less than it showed it could use. None where no
    native pair is known (not two non-negative numbers with a positive sum): then A = 100, today's bars."""
    if not (isinstance(native, list | tuple) and len(native) == 2 and all(_number(x) for x in native)
            and sum(native) > 0 and all(_number(x) for x in limited)):
        return None
    u_nat, u_lib = _pair_busy(list(native), demand), _pair_busy(limited, demand)
    return {"a": round(min(100.0, max(u_nat, u_lib)), 1), "native": round(u_nat, 1), "limited": round(u_lib, 1),
            "kept": round(100 * u_lib / u_nat, 1) if u_nat > 0 else None}


def _contended_bars(names: tuple[str, str], limits: list[float], demand: list[float], gpu: list[float],
                    limited: list[float], share_floors: list[float], cond: str, ach: dict | None
                    ) -> tuple[dict[str, bool], list[Measurement], str]:
    """The contended rule's checks and their rows: today's bars (ach None: the wall, A = 100) or the bars scaled to
    the pair's achievable GPU time A with the split and the busy-time kept (see _work_conserving). Returns the
    checks (name -> held), the rows and what a missed work-conserving check reads."""
    tol = WORK_CONSERVING_TOLERANCE_POINTS
    a = 100.0 if ach is None else ach["a"]
    busy = round(sum(gpu), 1)
    ms: list[Measurement] = []
    if ach is None:
        guarantees = [min(lim, d) - tol for lim, d in zip(limits, demand, strict=True)]
        for name, value, floor in zip(names, gpu, guarantees, strict=True):
            ms.append(Measurement(name=f"{name}_gpu_time", value=value, unit="% of the window (charged)",
                                  conditions=f"{cond}; target min(limit, solo demand) - {tol:g}",
                                  target=f">= {floor:g}"))
        busy_min = WORK_CONSERVING_BUSY_MIN_PERCENT
        ms.append(Measurement(name="pair_gpu_time", value=busy, unit="% of the window (charged, both tenants)",
                              conditions=f"{cond}; work-conserving: the GPU kept busy while a tenant was held",
                              target=f">= {busy_min:g}"))
    else:
        guarantees = [round(min(lim, d) * a / 100 - tol, 1) for lim, d in zip(limits, demand, strict=True)]
        for name, value, floor, lim, d in zip(names, gpu, guarantees, limits, demand, strict=True):
            ms.append(Measurement(name=f"{name}_gpu_time", value=value, unit="% of the window (charged)",
                                  conditions=f"{cond}; target min(limit, solo demand) x A / 100 - {tol:g}, A = {a:g} "
                                             f"% (against the wall: >= {min(lim, d) - tol:g})",
                                  target=f">= {floor:g}"))
        busy_min = round(WORK_CONSERVING_BUSY_MIN_PERCENT * a / 100, 1)
        ms.append(Measurement(name="pair_gpu_time", value=busy, unit="% of the window (charged, both tenants)",
                              conditions=f"{cond}; work-conserving: >= {WORK_CONSERVING_BUSY_MIN_PERCENT:g} % of the "
                                         f"{a:g} % the pair can keep busy (against the wall: >= "
                                         f"{WORK_CONSERVING_BUSY_MIN_PERCENT:g})",
                              target=f">= {busy_min:g}"))
    checks = {"guarantees held": all(g >= f for g, f in zip(gpu, guarantees, strict=True)),
              "work-conserving": busy >= busy_min,
              "throughput shares held": all(v >= f for v, f in zip(limited, share_floors, strict=True))}
    wc = f"charged {' + '.join(f'{g:g}' for g in gpu)} = {busy:g} % < {busy_min:g} %"
    if ach is None:
        return checks, ms, wc
    split_ok = True
    for name, g, lim, d in zip(names, gpu, limits, demand, strict=True):
        if d < lim:  # it lends what it leaves of its limit: its share of the pair's time is not its limit's
            continue
        share = round(100 * g / busy, 1) if busy > 0 else 0.0
        floor = round(100 * lim / sum(limits) - tol, 1)
        split_ok = split_ok and share >= floor
        ms.append(Measurement(name=f"{name}_gpu_time_share", value=share, unit="% of the pair's charged GPU time",
                              conditions=f"{cond}; splits by the limits: its demand reaches its limit {lim:g}, so it "
                                         f"gets at least its limit's share ({100 * lim / sum(limits):.1f} %) - {tol:g}",
                              target=f">= {floor:g}"))
    ms.append(Measurement(name="pair_busy_kept", value=ach["kept"] if ach["kept"] is not None else 0.0,
                          unit="% of the native pair's busy time (estimated)",
                          conditions=f"{cond}; sum of throughput share x solo demand: the limited pair "
                                     f"{ach['limited']:g} % against the native pair's {ach['native']:g} % (the "
                                     "charges' outside view)",
                          target=f">= {100 * WORK_CONSERVING_SUM_MIN:g}"))
    checks["split by the limits"] = split_ok
    checks["native pair's busy time kept"] = ach["kept"] is not None and ach["kept"] >= 100 * WORK_CONSERVING_SUM_MIN
    return checks, ms, wc


def _work_conserving(raw: dict, cond: str) -> tuple[Level, list[Measurement], str]:
    """The fitting/contended rule of issue 18 (see WORK_CONSERVING_* above); the note says which branch.

    A contended pair ("when they contend, GPU time still splits by the limits (±5 points)") is judged first by the
    bars against the wall: charged >= min(limit, demand) - 5 each, sum >= 95 %, throughput >= min(limit, native
    share) - 5. Those ask a pair to keep the GPU busier than its programs can: two JAX programs (busy probe 89.5 %)
    natively reach 50.2 + 50.2 % of solo, an estimated 89.9 % of the GPU (H100 record 14), and a 70 % tenant with
    10 % host gaps would need ~78 % of its solo throughput to be charged 70. A pair that misses them is supported
    when it meets every bar scaled to the GPU time the pair can keep busy, A (_achievable_gpu_time; A = 100 gives
    today's bars, so a pair that keeps the GPU full, or one with no native pair, is judged exactly as before):
    charged >= min(limit, demand) x A / 100 - 5 each, sum >= 95 % of A, the throughput floors as before, and two
    checks the scaling needs, since it lowers each floor:

    - split by the limits, as a ratio: a tenant whose demand reaches its limit gets at least its limit's share of
      the pair's charged time, less 5 points. Without it a 30 % tenant could take 35 of a pair's 93 % while its
      70 % neighbour, wanting more, sat at its scaled floor (58 of A = 90): 37.6 % of the pair's time for a 30 %
      limit. A tenant whose demand is below its limit is not held to its limit's share (it lends the rest: its
      neighbour may take more than its own, as `default` allows). The ratio is not checked against
      min(limit, demand) shares: the conformance pair of record 14 (training demand 98.5, inference 27.6, limits
      50 + 50, charged 50.0 + 48.9) reads 50.6 / 49.4 % of its charged time; against the limits' 50 / 50 the
      training tenant's share holds (>= 45), against min(limit, demand) (64.4 / 35.6) it would miss by 13.8 points
      -- the inference tenant is charged ~1.8x its demand (its throughput, 50.9 % of solo, says ~14 % of useful
      GPU time), an over-charge that holds the over-charged tenant back sooner and makes it lend less (the
      busy-time check below reads that), but never lets a tenant past its limit: the accounting's fault, which
      that check would report as a split's. (Record 14's pair meets the bars against the wall, so neither reading
      decides it.)
    - the native pair's busy time kept: the limited pair's busy estimate >= 90 % of the native pair's (the issue's
      "keeps >= 90 % of the unlimited pair's throughput", weighted by demand so that moving time between programs of
      unequal demand does not move it). The charges are the library's own accounting; this is the outside view.
      Without it the H200 conformance pair of record 13 (charged 50.8 + 37.9 = 88.7 %, A = 84.5 % from its native
      pair's 72.6 + 49.1 % of solo) would pass the scaled bars although its throughput kept only 85 % of the native
      pair (busy time 82.4 %): the training tenant, charged 50.8 at its 50 % limit, borrowed little from a
      neighbour charged 37.9 % for ~12 % of useful GPU time (44.8 % of its solo throughput x 27.3). Record 14's
      conformance pair keeps 85.7 % by this measure; it is supported by the bars against the wall (charged 98.9 %),
      and scaling never takes a verdict away.

    Scaling can only lift a contended pair to supported; one that misses a scaled check keeps today's verdict and
    today's rows, and its note says what the scaled rule missed."""
    native, limited, limits = raw["native_pair_percent_of_solo"], raw["limited_pair_percent_of_solo"], \
        raw["limits_percent"]
    names = ("training", "inference")
    tol = WORK_CONSERVING_TOLERANCE_POINTS
    demand = raw.get("solo_demand_percent") or [None, None]
    gpu = raw.get("limited_pair_gpu_time_percent") or [None, None]
    known = all(isinstance(d, int | float) and 0 <= d <= 100 for d in demand)
    contended = known and sum(demand) > WORK_CONSERVING_FIT_PERCENT
    kept = sum(limited) / sum(native) if sum(native) > 0 else 0.0
    floors = [min(lim, nat) - tol for lim, nat in zip(limits, native, strict=True)]
    ms: list[Measurement] = []
    if known:
        for name, d in zip(names, demand, strict=True):
            ms.append(Measurement(name=f"{name}_solo_demand", value=d, unit="% of the window (charged)",
                                  conditions="alone, no SM limit, CUDA_TASK_PRIORITY=0 (measured, never capped); "
                                             f"{cond}"))
    if contended:
        ms.append(Measurement(name="pair_throughput_kept", value=round(100 * kept, 1), unit="% of the native pair",
                              conditions=f"{cond}; contended pair (solo demands sum {sum(demand):.1f} % > "
                                         f"{WORK_CONSERVING_FIT_PERCENT:g} %): no target, the native pair overlaps "
                                         "on the GPU beyond its time, or its busy time is judged below"))
    else:
        ms.append(Measurement(name="pair_throughput_kept", value=round(100 * kept, 1), unit="% of the native pair",
                              conditions=cond, target=f">= {100 * WORK_CONSERVING_SUM_MIN:g}"))
    for name, value, floor in zip(names, limited, floors, strict=True):
        ms.append(Measurement(name=f"{name}_share", value=value, unit="% of solo", conditions=cond,
                              target=f">= {floor:g}"))
    shares_ok = all(v >= f for v, f in zip(limited, floors, strict=True))
    if not contended:
        # the GPU time the library charged each tenant (processor sharing), shown beside the throughput shares;
        # absent from results recorded before it was reported. Results without demand figures were recorded
        # before lending: their cap is the limit. With lending a tenant may exceed its limit: no target
        for name, value, lim in zip(names, gpu, limits, strict=True):
            if value is not None:
                ms.append(Measurement(name=f"{name}_gpu_time", value=value, unit="% of the window (charged)",
                                      conditions=cond, target=None if known else f"<= {lim + tol:g}"))
        why = ("fitting pair (solo demands sum "
               f"{sum(demand):.1f} % <= {WORK_CONSERVING_FIT_PERCENT:g} %)" if known
               else "no usable solo demand figures (missing, or outside 0..100 %): judged by the fitting-pair rule")
        ok_kept = kept >= WORK_CONSERVING_SUM_MIN
        if ok_kept and shares_ok:
            return Level.SUPPORTED, ms, why
        if ok_kept or shares_ok:
            return Level.PARTIAL, ms, f"{why}: work-conserving or fair, not both"
        return Level.UNSUPPORTED, ms, f"{why}: the limited pair lost throughput and a tenant fell below its share"
    why = f"contended pair (solo demands sum {sum(demand):.1f} % > {WORK_CONSERVING_FIT_PERCENT:g} %)"
    if not all(isinstance(g, int | float) for g in gpu):
        return Level.UNVERIFIED, ms, f"{why}: the charged GPU time of the limited pair was not reported"
    ach = _achievable_gpu_time(native, limited, demand)
    if ach is not None:
        ms.append(Measurement(name="pair_achievable_gpu_time", value=ach["a"], unit="% of the window (estimated)",
                              conditions=f"{cond}; A = min(100, max(native pair {ach['native']:g}, limited pair "
                                         f"{ach['limited']:g})), each the sum of throughput share (% of solo) x solo "
                                         f"demand / 100 (native {' + '.join(f'{x:g}' for x in native)}, limited "
                                         f"{' + '.join(f'{x:g}' for x in limited)} % of solo; demands "
                                         f"{' + '.join(f'{x:g}' for x in demand)} %): a step taken to cost the GPU "
                                         "what it costs alone"))
    checks, today_ms, wc = _contended_bars(names, limits, demand, gpu, limited, floors, cond, None)
    missed = [k for k, ok in checks.items() if not ok]
    if not missed:
        return Level.SUPPORTED, ms + today_ms, why
    detail = f"{why}: missed {', '.join(missed)}"
    if "work-conserving" in missed:
        detail += f" ({wc})"
    level = Level.UNSUPPORTED if len(missed) == len(checks) else Level.PARTIAL
    if ach is None or ach["a"] >= 100:
        return level, ms + today_ms, detail
    s_checks, s_ms, s_wc = _contended_bars(names, limits, demand, gpu, limited, floors, cond, ach)
    s_missed = [k for k, ok in s_checks.items() if not ok]
    busy = round(sum(gpu), 1)
    who = ("native pair" if ach["native"] >= ach["limited"]
           else f"limited pair itself (the native pair: {ach['native']:g} %)")
    scaled = (f"the GPU time the pair can keep busy, A = {ach['a']:g} % (throughput share x solo demand summed: "
              f"native pair {ach['native']:g}, limited pair {ach['limited']:g})")
    if not s_missed:
        bar = WORK_CONSERVING_BUSY_MIN_PERCENT
        return Level.SUPPORTED, ms + s_ms, (
            f"{why}: judged against {scaled}: charged {' + '.join(f'{g:g}' for g in gpu)} = {busy:g} % "
            f"{'<' if busy < bar else '>='} {bar:g} % of the wall, >= {bar:g} % of the {ach['a']:g} % the {who} keeps "
            f"busy; every bar scaled to A held (against the wall: missed {', '.join(missed)})")
    more = f" ({s_wc})" if "work-conserving" in s_missed else ""
    return level, ms + today_ms, f"{detail}; against {scaled} also missed {', '.join(s_missed)}{more}"


Judge = Callable[[dict, str], tuple[Level, list[Measurement], str]]

#: metrics/allocation-usage: each tenant's hami_vgpu_memory_used_bytes within this many percent of the memory
#: NVML attributes to the tenant's process from outside.
USAGE_TOLERANCE_PERCENT = 1.0
MIB = 1 << 20


def _allocation_usage(raw: dict, cond: str) -> tuple[Level, list[Measurement], str]:
    """Judge the two-tenant usage probe: every tenant's series exists, carries its own limit, is at least what
    the tenant allocated, and is within 1 % of the outside per-process figure."""
    ms: list[Measurement] = []
    problems: list[str] = []
    errors: list[float] = []
    for row in raw["tenants"]:
        pod, used, limit = row["pod"], row["series_used_bytes"], row["series_limit_bytes"]
        if used is None:
            problems.append(f"the exporter served no hami_vgpu_memory_used_bytes for pod {pod}")
            continue
        ms.append(Measurement(name=f"{pod}_series_used", value=round(used / MIB, 1), unit="MiB", conditions=cond))
        ms.append(Measurement(name=f"{pod}_allocated", value=round(row["allocated_bytes"] / MIB, 1), unit="MiB",
                              conditions=cond))
        if limit != row["limit_mib"] * MIB:
            problems.append(f"pod {pod}: hami_vgpu_memory_limit_bytes {limit} but its limit is {row['limit_mib']} MiB")
        if used < row["allocated_bytes"]:
            problems.append(f"pod {pod}: series {used} B below the {row['allocated_bytes']} B it allocated")
        outside, name = row.get("nvml_process_used_bytes"), f"{pod}_process_used"
        if not outside:  # NVML names no tenant PID (a PID namespace): the device's growth when it started
            outside, name = row.get("nvml_device_growth_bytes"), f"{pod}_device_growth"
        if outside and outside > 0:
            ms.append(Measurement(name=name, value=round(outside / MIB, 1), unit="MiB", conditions=cond))
            ms.append(Measurement(name=f"{pod}_series_minus_outside", value=round((used - outside) / MIB, 1),
                                  unit="MiB", conditions=cond))
            errors.append(100 * abs(used - outside) / outside)
    if problems:
        return Level.UNSUPPORTED, ms, "; ".join(problems)
    if not errors or len(errors) != len(raw["tenants"]):
        return Level.UNVERIFIED, ms, "no per-process usage from outside the tenants (NVML) to compare with"
    ms.insert(0, Measurement(name="usage_error", value=round(max(errors), 3), unit="%", conditions=cond,
                             target=f"<= {USAGE_TOLERANCE_PERCENT:g}"))
    ok = max(errors) <= USAGE_TOLERANCE_PERCENT
    return (Level.SUPPORTED if ok else Level.PARTIAL), ms, "" if ok else "a series misses its tenant's usage"


def _usage_probe(device: Device, behaviour_id: str) -> ProbeResult:
    from .interposer import usage_probe

    tenants = usage_probe.DEFAULT_TENANTS
    cond = ("two tenants on one GPU, each under libvgpu.so with its own container folder: " + "; ".join(
        f"{t.pod} {t.limit_mib} MiB / {t.sm_percent} % allocating {t.alloc_mib} MiB" for t in tenants)
        + "; exporter scraped while both hold their allocation; outside view: NVML per-process used memory")
    raw = usage_probe.measure_allocation_usage(device)
    try:
        level, measurements, note = _allocation_usage(raw, cond)
    except (KeyError, TypeError) as err:
        return ProbeResult(behaviour_id=behaviour_id, level=Level.UNVERIFIED,
                           evidence=[f"usage probe answered without {err}"])
    frameworks = sorted({r["framework"] for r in raw["tenants"]})
    evidence = [f"measure_allocation_usage({device.uuid}) with libvgpu.so {raw['library_version']} on "
                f"{device.provenance.label()}, tenants via {'/'.join(frameworks)}",
                f"pass: each tenant's hami_vgpu_memory_used_bytes within {USAGE_TOLERANCE_PERCENT:g} % of its "
                "process's NVML used memory (else the device's NVML used-memory growth when the tenant started, "
                "tenants started one at a time), its limit series equal to its limit, never below what it allocated"]
    return ProbeResult(behaviour_id=behaviour_id, level=level, evidence=evidence, measurements=measurements,
                       notes=note)


def _plan(device: Device) -> dict[str, tuple[str, tuple, str, Judge]]:
    limit = max(256, min(4096, device.memory_mib // 8))
    mem_cond = f"CUDA_DEVICE_MEMORY_LIMIT={limit}m, PyTorch default allocator, fill until OOM"
    return {
        "isolation/memory-hard": ("measure_memory_isolation", (device.index, limit), mem_cond, _memory_hard),
        "isolation/memory-reported-total": ("measure_memory_isolation", (device.index, limit), mem_cond,
                                            _reported_total),
        "isolation/compute-share": ("measure_compute_share", (device.index, COMPUTE_PROBE_PERCENT),
                                    f"CUDA_DEVICE_SM_LIMIT={COMPUTE_PROBE_PERCENT}, bf16 8192^3 matmul vs native",
                                    _compute_share),
        "isolation/launch-overhead": ("measure_launch_overhead", (device.index,),
                                      "no limits, tiny-kernel loop, median of 10 interleaved native/preloaded pairs",
                                      _launch_overhead),
        "isolation/priority": ("measure_priority", (device.index,),
                               "CUDA_TASK_PRIORITY=0 vs =1, two containers on one node board, bf16 8192^3 "
                               "matmul loops of 5 s, share of each one's solo throughput while both run",
                               _priority),
        "isolation/work-conserving-sharing": (
            "measure_work_conserving", (device.index, 5.0, WORK_CONSERVING_LIMITS),
            f"training loop (124 M transformer, batch 16 x 1024) + inference loop (batch 1 x 128), "
            f"CUDA_DEVICE_SM_LIMIT {WORK_CONSERVING_LIMITS[0]} + {WORK_CONSERVING_LIMITS[1]} under "
            "GPU_CORE_UTILIZATION_POLICY=default (lending) vs the same pair native, 5 s windows, throughput as % of "
            "each program's solo throughput", _work_conserving),
    }


def _launch_stats_evidence(stats: object) -> list[str]:
    """One evidence row per limited tenant whose library printed its launch stats line (how it was charged: coarse
    and precise launches, switches, turns, held time; bounded where it is read: interposer.probe.launch_stats_line);
    anything else in the raw result is left out."""
    if not isinstance(stats, list):
        return []
    return [f"{name} launch stats (the limited pair, the library's own accounting): {line}"
            for name, line in zip(("training", "inference"), stats, strict=False) if isinstance(line, str) and line]


def run_probe(device: Device, behaviour_id: str) -> ProbeResult | None:
    """The interposer measurement for ``behaviour_id`` on ``device``; None when there is none."""
    if behaviour_id == "oversubscription/memory":  # by design, on any device: nothing to measure
        return ProbeResult(behaviour_id=behaviour_id, level=Level.UNSUPPORTED,
                           evidence=[OVERSUBSCRIPTION_REASON], notes="not implemented (design, not a measurement)")
    if device.provenance.simulated or not device.healthy:
        return None
    try:
        from .interposer import library_version
        from .interposer import probe as iprobe
    except ImportError:
        return None
    if behaviour_id == "metrics/allocation-usage":
        return _usage_probe(device, behaviour_id)
    plan = _plan(device).get(behaviour_id)
    if plan is None:
        return None
    name, args, cond, judge = plan
    raw = getattr(iprobe, name)(*args)
    try:
        level, measurements, note = judge(raw, cond)
    except (KeyError, TypeError) as err:
        return ProbeResult(behaviour_id=behaviour_id, level=Level.UNVERIFIED,
                           evidence=[f"interposer {name} answered without {err}"])
    evidence = [f"{name}{args} with libvgpu.so {library_version()} on {device.provenance.label()}"]
    if behaviour_id in CRITERIA:
        evidence.append(CRITERIA[behaviour_id])
    if behaviour_id == "isolation/work-conserving-sharing" and note:
        evidence.append(f"judged as a {note}" if note.startswith(("fitting", "contended")) else note)
    if behaviour_id == "isolation/work-conserving-sharing":
        evidence.extend(_launch_stats_evidence(raw.get("limited_pair_launch_stats")))
    return ProbeResult(behaviour_id=behaviour_id, level=level, evidence=evidence, measurements=measurements,
                       notes=note)
