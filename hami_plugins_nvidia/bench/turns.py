"""HAMI_SM_TURNS on the fake libcuda (issue 18): GPU-bound pairs taking turns instead of time-slicing, A/B.

Two containers (each its own region, one node board, one fake GPU) run the same driver_app loop, started together.
The fake's GPU runs time slices with a switch cost (SLICED below), which a native GPU-bound pair pays on every
slice: the pair's useful GPU time (the fake's own accounting, both tenants' summed over the wall) falls short of
the whole GPU by about switch / (slice + switch). Arms: native (no library), off (the library, HAMI_SM_TURNS=0:
time-slicing), on (HAMI_SM_TURNS=1) and default (the knob unset: on since issue 18's record 9; a --lib build from
before that is off unset). Cases:
  bound   2 ms kernels, a sync every 4 (GPU-bound), GPU_CORE_UTILIZATION_POLICY=force, limits from --pairs;
  loop    (--cases loop) shaped like the H100's training loop (record 7: ~750 launches a step, one sync, the host
          far ahead of its GPU): 60 us kernels launched back to back, a sync every 750, force, limits from --pairs.
          Time-slicing, each tenant fills the library's mark ring (127 launches) and waits there for its own work,
          which turns' demand estimate counts (lending.c turn_bp; before, it read as the charged share);
  train   (--cases train) closer to the H100's training pair (record 8 stage 12): GPU_CORE_UTILIZATION_POLICY=default
          as issue18_gpu.sh runs it, kernels of mixed length in phases (150 of 400 us, 600 of 20 us: the library's
          per-mark average misjudges the queued work) and 2 ms of host time after each step's sync (CASE_ENV);
  graphs  (--cases graphs) shaped like the H100's CUDA-graphs program (record 9 stage 15: a replay of ~0.09 ms on
          each of 2 streams, a sync after every step, solo busy ~88 %): driver_app graphs, 400 us graphs on 2 streams,
          no host gap, GPU_CORE_UTILIZATION_POLICY=default as issue18_gpu.sh runs it. The owner's own host
          gaps (a sync every step) leave the GPU idle within its window. On the fake's host (~130 us of host
          time a step, this 2-core VM) 400 us graphs keep the GPU ~86 % busy alone, as the H100's ~0.09 ms replays
          did (88 %; 67-82 % on a loaded host); graphs-gap adds 50 us of host time a step (35-80 % busy alone as
          the host is loaded), graphs-short has 100 us graphs (41-59 % busy alone: host-bound), graphs-long 2 ms
          graphs and 1.2 ms of host time a step (~74 % busy alone, little of it the host's speed: the CI test's
          shape, test_interposer_turns.py GRAPHS); graphs-go is graphs as bench/real_workloads.py runs a pair: 0.1 s
          of steps (the warm-up), 600 ms idle (the wait for the pair's common start), then the measured window (H100
          record 12: a tenant still capped across the wait read it as a demand of ~0 and re-entered turns late);
  train-gNN (--cases train-g03,train-g08,train-g12; turnloss) the train case with 0.3 / 0.8 / 1.2 ms of host time after
          each step's sync instead of 2 ms: shorter than TURN_GAP_NS (1.5 ms), so taking turns the neighbour may not
          fill the owner's host gap (turns.c owner_wants); arms gapNNN set HAMI_SM_TURN_GAP_US (both tenants), arm
          solo runs tenant A alone with no library (the pair's "% of solo" divides by its share);
  train-go, train-g80, loop-g20 (judgedout) train as real_workloads.py runs a pair (0.1 s of steps, 600 ms idle, the
          window); train with 8 ms of host time after each sync; loop with a sync every 200 launches and 2 ms of host
          time after it (~86 % busy alone): with arm nosw-gap25 (switches never charged, HAMI_SM_TURN_GAP_US=2500: the
          neighbour does not fill its gaps) its credit piles up and it measures part of its launches coarsely while
          ~127 marks ahead of its GPU, as the H100's training tenants did (record 17 stage 27); the train cases stay
          precise on the fake (their credit never piles up); arms fix and nosw-gap25-fix (judgeab) are on and
          nosw-gap25 with HAMI_SM_TURNS_COUNT_COARSE=1 (the stay test counts coarse marks' kernel estimates), and
          --turns-log has every library tenant write HAMI_SM_TURNS_LOG (a line per stay-test judgement, read by
          turns_log.py: each row keeps them, the record adds a table of the judgements in and below the bound);
  mixed   (--cases mixed) A 300 us kernels, a sync and 200 us of host time after each (~43 % busy alone), B bound's
          GPU-bound program, default: a tenant busy under half the limits' sum beside a GPU-bound one, which taking
          turns would leave its window x its busy fraction (run it with --pairs 30+70);
  trainfer (--cases trainfer) the conformance behaviour isolation/work-conserving-sharing (H100 record 9 stage 16): A the
          train case's loop (GPU-bound), B a small-batch inference loop (10 us kernels, 12 us of host time after each,
          busy-waited, a sync per 195: launch-bound, ~50 % busy alone, bench/fake_sharing_cases.py lbpair), default,
          limits from --pairs. Only A is GPU-bound: B must not take turns (turns.c TURN_BOUND_BP);
  infer5  (--cases infer5) both tenants the small-batch inference loop of H200 record 13 (5 us kernels, 12 us of
          busy-waited host time after each, a sync per 195: launch-bound, the pair fits the GPU), default, limits from
          --pairs: each tenant's charge against its fake GPU time (pairover); its rows keep each tenant's launch stats
          line (stats). Arms precise (HAMI_SM_PRECISE=1) and sample256 (HAMI_SM_SAMPLE_EVERY=256) say which path
          the charge comes from;
  infer2c (--cases infer2c) the infer5 loop with 2 us kernels and the H200's driver costs modelled
          (FAKE_CUDA_COSTS_NS): its kernels end before their end marks reach the GPU (pairring);
  jax     (--cases jax; jaxover) shaped like bench/real_workloads.py's JAX program (one 8192^3 matmul and a
          block_until_ready a step: 1.25 ms kernels, a sync after each, 150 us of host time; ~81 % busy alone on the
          fake), default, limits from --pairs; its rows keep each tenant's launch stats line. Arms off-nolend (turns off,
          no lending) and gapall / off-gapall (HAMI_SM_GAP_EVERY_LAUNCH=1: the host's launch interval learnt from every
          launch, as before jaxover) say where a tenant's charge over its limit comes from; off-unsliced and
          off-gapall-unsliced (jaxslice) are off and off-gapall with HAMI_SM_LEND_SLICED=0 (the lending rule before it);
  launch  100 us kernels, a sync after each, 300 us host gaps (launch-bound, ~25 % busy alone), limits 50+50: the
          pair fits the GPU, never contends, and must keep overlapping (its launches within 5 % of off).
Per tenant: its share of the fake GPU (%), the GPU time spent switching into it (%), its launches, the library's
charge (its region's busy time, % of its wall); per pair: the sum of the shares (useful GPU time) and of the switch
time. Rounds interleave the arms (ABC, CBA, ...). These are figures
of the fake on whatever machine runs the bench (label them "fake libcuda, <machine>"), never hardware figures.

    .venv/bin/python hami_plugins_nvidia/bench/turns.py --out docs/results/X.json --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))

import region  # noqa: E402 - the region layout, read through cffi (each tenant's charge)
import turns_log  # noqa: E402 - HAMI_SM_TURNS_LOG's files, summarised (--turns-log)
from launch_path_cost import (  # noqa: E402 - the fake libcuda and driver_app, built as the tests do
    add_record_args,
    add_round_args,
    alternating,
    build_libs,
    build_tools,
    check_round_args,
    record_head,
    record_title,
    write_record,
)

SLICED = {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "200"}  # --switch-us replaces the switch's cost
PROGRAMS = {"bound": ["spin", "2000", "0", "{secs}", "4"], "launch": ["spin", "100", "300", "{secs}", "1"],
            "loop": ["spin", "60", "0", "{secs}", "750"], "train": ["spin", "20", "0", "{secs}", "750"],
            "graphs": ["graphs", "400", "2", "0", "{secs}"], "graphs-gap": ["graphs", "400", "2", "50", "{secs}"],
            "graphs-short": ["graphs", "100", "2", "0", "{secs}"],
            "graphs-long": ["graphs", "2000", "2", "1200", "{secs}"],
            "graphs-go": ["graphs", "400", "2", "0", "0.1", "sleep", "600", "graphs", "400", "2", "0", "{secs}"]}
#: case mixed: A keeps the fake GPU ~43 % busy alone (300 us kernels, a sync and 200 us of host time after each), B is
#: GPU-bound (bound's program): a tenant busy under half the limits' sum beside a GPU-bound one (turns.c turn_wanted)
MIXED = {"mixed": (["spin", "300", "200", "{secs}", "1"], ["spin", "2000", "0", "{secs}", "4"])}
#: the train case's step: 150 kernels of 400 us, then 600 of 20 us (a step's GEMMs, then its small kernels: 72 ms of GPU
#: work in 750 launches), a sync, 2 ms of host time (driver_app DRIVER_SPIN_MIX, DRIVER_SPIN_STEP_GAP_US)
CASE_ENV = {"train": {"DRIVER_SPIN_MIX": "400:150:600", "DRIVER_SPIN_STEP_GAP_US": "2000"}}
#: turnloss: the train case with a step's host gap under TURN_GAP_NS (0.3 / 0.8 / 1.2 ms)
for _g in ("03", "08", "12"):
    PROGRAMS[f"train-g{_g}"] = PROGRAMS["train"]
    CASE_ENV[f"train-g{_g}"] = {**CASE_ENV["train"], "DRIVER_SPIN_STEP_GAP_US": str(int(_g) * 100)}
#: judgedout: the train case as bench/real_workloads.py runs a pair (graphs-go's shape): 0.1 s of steps (the warm-up),
#: 600 ms idle (the wait for the pair's common start: its credit fills to the bucket's cap), then the measured window
PROGRAMS["train-go"] = ["spin", "20", "0", "0.1", "750", "sleep", "600", "spin", "20", "0", "{secs}", "750"]
CASE_ENV["train-go"] = CASE_ENV["train"]
#: ... and the train case with 8 ms of host time after each step's sync (~90 % busy alone): it leaves part of its
#: window to its neighbour's fill, its credit piles up to the bucket's cap and it measures coarsely, as the H100's
#: training tenants did (record 17 stage 27: 1.4-17.3 % of their launches coarse, the host ~127 marks ahead)
PROGRAMS["train-g80"] = PROGRAMS["train"]
CASE_ENV["train-g80"] = {**CASE_ENV["train"], "DRIVER_SPIN_STEP_GAP_US": "8000"}
#: ... and the loop case with a sync every 200 launches and 2 ms of host time after it (~86 % busy alone)
PROGRAMS["loop-g20"] = ["spin", "60", "0", "{secs}", "200"]
CASE_ENV["loop-g20"] = {"DRIVER_SPIN_STEP_GAP_US": "2000"}
#: trainloss: the train case's step (150 kernels of 400 us, 600 of 20 us, a sync) with the host stalling now and then
#: (driver_app passes, DRIVER_STALL=EVERY:AT:MS: every EVERY-th step it sleeps MS ms before the step's AT-th launch, in
#: its short kernels, where little is queued), tried as a GPU-bound loop whose in-window busy share dips under turns'
#: stay bound now and then, as the H100's training tenants read (record 19 stage 29: every one judged out was out after
#: exactly two misses in a row). It does not: on the fake every judgement read 100 % (2:700:12, 3:700:35, 2:700:25; 8
#: runs); kept as the record's negative. Arm misses3 sets HAMI_SM_TURN_MISSES=3 (turns.c turns_update)
PROGRAMS["train-stall"] = ["passes", "150*400,600*20", "0", "{secs}"]
CASE_ENV["train-stall"] = {"DRIVER_STALL": "2:700:12"}
POLICY = {"bound": "force", "launch": "default", "loop": "force", "train": "default", "graphs": "default",
          "graphs-gap": "default", "graphs-short": "default", "graphs-long": "default", "graphs-go": "default",
          "mixed": "default", "trainfer": "default", "train-g03": "default", "train-g08": "default",
          "train-g12": "default", "train-go": "default", "train-g80": "default", "loop-g20": "force",
          "train-stall": "default"}
GPU_CASES = ("bound", "loop", "train", "train-g03", "train-g08", "train-g12", "train-go", "train-g80", "loop-g20", "train-stall",
             "graphs", "graphs-gap", "graphs-short", "graphs-long", "graphs-go", "mixed", "trainfer", "infer5",
             "infer2c", "jax")
#: cases whose tenant B runs another program with its own environment: trainfer = the train case's loop (A) beside
#: the small-batch inference loop (B; fake_sharing_cases.py lbpair: ~50 % busy alone, launch-bound)
SECOND = {"trainfer": ("infer", {"DRIVER_BUSY_GAP": "1", "FAKE_CUDA_SYNC_POLL_US": "10"})}
PROGRAMS["trainfer"] = PROGRAMS["train"]
PROGRAMS["infer"] = ["spin", "10", "12", "{secs}", "195"]
CASE_ENV["trainfer"] = CASE_ENV["train"]
#: case infer5 (pairover, issue 18's H200 record 13): both tenants the small-batch inference loop of record 13 (5 us
#: kernels, 12 us of busy-waited host time after each, a sync per 195; launch-bound, the pair fits the GPU), default
PROGRAMS["infer5"] = ["spin", "5", "12", "{secs}", "195"]
CASE_ENV["infer5"] = {"DRIVER_BUSY_GAP": "1", "FAKE_CUDA_SYNC_POLL_US": "10"}
POLICY["infer5"] = "default"
#: case infer2c (pairring): the same loop with 2 us kernels and the H200's driver costs modelled (~3 us an event record):
#: a kernel ends before its end mark reaches the GPU, the context runs out of work and the GPU switches away, and the
#: end mark's span holds the neighbour's turn (docs/results/2026-12-06-fake-pairring.md)
PROGRAMS["infer2c"] = ["spin", "2", "12", "{secs}", "195"]
CASE_ENV["infer2c"] = {**CASE_ENV["infer5"],
                       "FAKE_CUDA_COSTS_NS": "launch=3000,record=3000,query=1500,elapsed=1500,sync=2000,wait=3000"}
POLICY["infer2c"] = "default"
#: case jax (jaxover, issue 18 record 18 stage 2): shaped like bench/real_workloads.py's JAX program (8192^3 bf16 matmuls,
#: one block_until_ready a step: ~1.25 ms kernels, ~0.15 ms of host time a step, ~89 % busy alone on the H100), default
PROGRAMS["jax"] = ["spin", "1250", "150", "{secs}", "1"]
POLICY["jax"] = "default"
ARMS = {"native": None, "off": {"HAMI_SM_TURNS": "0"}, "on": {"HAMI_SM_TURNS": "1"}, "default": {},
        # pairover's diagnosis arms: every launch measured precisely; coarse samples 1 in 256 (the knob's floor rate)
        "precise": {"HAMI_SM_PRECISE": "1"}, "sample256": {"HAMI_SM_SAMPLE_EVERY": "256"},
        # gatemarks: marked launches gated on a host-written word (launch.c gate_arm), under default and precise
        "gate": {"HAMI_SM_GATE_MARKS": "1"}, "gate-precise": {"HAMI_SM_PRECISE": "1", "HAMI_SM_GATE_MARKS": "1"},
        # ... and HAMI_SM_GATE_MARKS=2: chained precise launches too, each with a gated start mark
        "gate2": {"HAMI_SM_GATE_MARKS": "2"}, "gate2-precise": {"HAMI_SM_PRECISE": "1", "HAMI_SM_GATE_MARKS": "2"},
        # turnloss: tenant A alone, no library (the pairs' "% of solo"); turns with a shorter fill gap (turns.c)
        "solo": None, "gap300": {"HAMI_SM_TURN_GAP_US": "300"}, "gap500": {"HAMI_SM_TURN_GAP_US": "500"},
        "gap800": {"HAMI_SM_TURN_GAP_US": "800"},
        # judgedout: switches never charged, so a tenant with ample credit may measure coarsely beside its neighbour
        # (on the H100 the training pairs' demand estimates summed under 100 %, and the tenants went coarse)
        "nosw": {"HAMI_SM_CHARGE_SWITCHES": "0"},
        "nosw-gap25": {"HAMI_SM_CHARGE_SWITCHES": "0", "HAMI_SM_TURN_GAP_US": "2500"},
        # judgeab: turns' stay test counting its coarse marks' kernel estimates (HAMI_SM_TURNS_COUNT_COARSE=1, off by
        # default: turns.c turns_note_window), beside on and nosw-gap25
        "fix": {"HAMI_SM_TURNS": "1", "HAMI_SM_TURNS_COUNT_COARSE": "1"},
        "nosw-gap25-fix": {"HAMI_SM_CHARGE_SWITCHES": "0", "HAMI_SM_TURN_GAP_US": "2500",
                           "HAMI_SM_TURNS_COUNT_COARSE": "1"},
        # jaxover: no lending under default (what a tenant charged over its limit was lent)
        # trainloss: judged out of turns after three misses in a row, not two (turns.c turns_update)
        "misses3": {"HAMI_SM_TURN_MISSES": "3"},
        "nolend": {"HAMI_SM_NO_LEND": "1"}, "off-nolend": {"HAMI_SM_TURNS": "0", "HAMI_SM_NO_LEND": "1"},
        # ... and the host's launch interval learnt from every launch, as before jaxover (launch.c note_interval)
        "gapall": {"HAMI_SM_GAP_EVERY_LAUNCH": "1"}, "off-gapall": {"HAMI_SM_TURNS": "0", "HAMI_SM_GAP_EVERY_LAUNCH": "1"},
        # jaxslice: a time-sliced lender's waits not counted in its demand alone, which does not bound its lending
        # (HAMI_SM_LEND_SLICED=0, the rule before jaxslice), turns off, with either gap rule
        "off-unsliced": {"HAMI_SM_TURNS": "0", "HAMI_SM_LEND_SLICED": "0"},
        "off-gapall-unsliced": {"HAMI_SM_TURNS": "0", "HAMI_SM_GAP_EVERY_LAUNCH": "1", "HAMI_SM_LEND_SLICED": "0"},
        # jaxfill: turns with and without the stepping owner's fill (HAMI_SM_TURN_FILL_STEPS, turns.c owner_steps; off
        # by default until the H100's A/B: "on" is "on-nofill")
        "on-nofill": {"HAMI_SM_TURNS": "1", "HAMI_SM_TURN_FILL_STEPS": "0"},
        "on-fill": {"HAMI_SM_TURNS": "1", "HAMI_SM_TURN_FILL_STEPS": "1"},
        # stepslice: a tenant stepping one launch at a time keeps out of turns (HAMI_SM_TURNS_STEPPERS=0, turns.c
        # turn_wanted; off by default until the H100's A/B, stage 37): a JAX pair time-slices, a training pair takes turns
        "steppers-off": {"HAMI_SM_TURNS_STEPPERS": "0"}}
#: the launch stats line's turns section (launch.c launch_stats_report, with turns on)
TURNS_FIELDS = re.compile(r"; turns on (?P<on>[\d.]+) ms, held (?P<holds>\d+) times, (?P<held>[\d.]+) ms, longest "
                          r"(?P<longest>[\d.]+) ms, (?P<cuts>\d+) cut(?:, demand for turns (?P<demand>[\d.]+) %, "
                          r"full-ring waits (?P<full>[\d.]+) ms)?(?:, first on after (?P<first>-?[\d.]+) ms, off "
                          r"(?P<offs>\d+) times)?(?:, busy in its windows (?P<win>[\d.]+) %, judged out (?P<outs>\d+))?")


#: --turns-log: every library tenant writes HAMI_SM_TURNS_LOG (a line per stay-test judgement, csrc/turns.c) into its
#: container folder, summarised per tenant (turns_log.py) into its row
TURNS_LOG = False


def tenant_env(fake_dir: Path, lib: Path, tmp: Path, name: str, limit: int, case: str, arm: str,
               case_env: dict[str, str] | None = None) -> dict[str, str]:
    """A container of the pair: its own region, the pair's board and fake GPU; the library only outside native.
    case_env: the tenant's program environment (default: the case's, CASE_ENV)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD", "GPU_CORE", "FAKE_CUDA", "DRIVER_SPIN"))}
    ctr = tmp / name
    ctr.mkdir(parents=True, exist_ok=True)
    env.update(LD_LIBRARY_PATH=str(fake_dir), FAKE_CUDA_GPU=str(tmp / "gpu"), **SLICED, **(CASE_ENV.get(case, {}) if case_env is None else case_env))
    knobs = ARMS[arm]
    if knobs is not None:
        env.update(LD_PRELOAD=str(lib), CUDA_DEVICE_MEMORY_SHARED_CACHE=str(ctr / "region"),
                   HAMI_NODE_BOARD=str(tmp / "board"), HAMI_SM_PERIOD_MS="100", HAMI_LAUNCH_STATS="1",
                   CUDA_DEVICE_SM_LIMIT=str(limit), GPU_CORE_UTILIZATION_POLICY=POLICY[case], **knobs)
        if TURNS_LOG:
            env["HAMI_SM_TURNS_LOG"] = str(ctr / "turns")
    return env


#: the same line's head: its measured launches and the share of them measured coarsely (launch.c)
COARSE_FIELD = re.compile(r"launch stats: \d+ measured launches \((?P<coarse>[\d.]+) % coarse\)")
#: the same line's credit waits (the throttle's holds for credit, not by turns)
CREDIT_FIELDS = re.compile(r"; held (?P<holds>\d+) times, (?P<held>[\d.]+) ms;")
#: the same line's wall accounting (since trainfer, launch.c): credit the bucket's cap took away (and while held), the
#: credit waits with none of its work on the GPU
ACCOUNT_FIELDS = re.compile(r"; credit capped (?P<cap>[\d.]+) ms \((?P<caph>[\d.]+) ms held\), held with nothing queued "
                            r"(?P<idle>[\d.]+) ms")


#: the same line's kernel table (since trainsplit, launch.c kt_get): precise launches the table priced, those with a key,
#: the keys it held at exit
KT_FIELDS = re.compile(r"; kernel table priced (?P<priced>\d+) of (?P<keyed>\d+) keyed launches, (?P<keys>\d+) keys")


#: the same line's gate section (since gatemarks, launch.c gate_arm; printed only with HAMI_SM_GATE_MARKS on): marked
#: launches gated, those left ungated, and why the gate went off for good if it did
GATE_FIELDS = re.compile(r"; gated marks (?P<gated>\d+), (?P<ungated>\d+) not gated(?:, gate off: (?P<off>[^;]+))?")


#: the same line's stream-destroy hook (since gatefix, launch.c stream_destroying): the cuStreamDestroy calls it saw, and
#: the destroyed streams' open runs closed by an event, with none (a wait proved them), or left stale
DESTROY_FIELDS = re.compile(r"; streams destroyed (?P<calls>\d+), runs closed by event (?P<event>\d+), with no event "
                            r"(?P<host>\d+), stale (?P<stale>\d+)")


def turn_stats(err: str) -> dict[str, float]:
    """The library's exit line's turns figures (launch.c launch_stats_report) and its credit waits, {} when absent."""
    c = CREDIT_FIELDS.search(err)
    credit = {"credit_holds": int(c["holds"]), "credit_held_ms": float(c["held"])} if c else {}
    acc = ACCOUNT_FIELDS.search(err)
    if acc:  # since trainfer
        credit.update(capped_ms=float(acc["cap"]), capped_held_ms=float(acc["caph"]), held_idle_ms=float(acc["idle"]))
    gt = GATE_FIELDS.search(err)
    if gt:  # since gatemarks
        credit.update(gated=int(gt["gated"]), ungated=int(gt["ungated"]), **({"gate_off": gt["off"]} if gt["off"] else {}))
    sd = DESTROY_FIELDS.search(err)
    if sd:  # since gatefix
        credit.update(streams_destroyed=int(sd["calls"]), destroy_closed_event=int(sd["event"]),
                      destroy_closed_host=int(sd["host"]), destroy_stale=int(sd["stale"]))
    kt = KT_FIELDS.search(err)
    if kt:  # since trainsplit
        credit.update(kt_priced=int(kt["priced"]), kt_keyed=int(kt["keyed"]), kt_keys=int(kt["keys"]))
    co = COARSE_FIELD.search(err)
    if co:  # judgedout: the share of its measured launches measured coarsely
        credit.update(coarse_pct=float(co["coarse"]))
    m = TURNS_FIELDS.search(err)
    if not m:
        return credit
    out = {**credit, "turns_on_ms": float(m["on"]), "turn_holds": int(m["holds"]), "turn_held_ms": float(m["held"]),
           "turn_longest_ms": float(m["longest"]), "turn_cuts": int(m["cuts"])}
    if m["demand"] is not None:  # since turnsreal (lending.c turn_bp)
        out.update(turn_demand=float(m["demand"]), full_ring_ms=float(m["full"]))
    if m["first"] is not None:  # since turnsgraphs: the warm-up (-1: turns never came on) and the times turns went off
        out.update(turn_first_ms=float(m["first"]), turn_offs=int(m["offs"]))
    if m["win"] is not None:  # since turnsbound (turns.c turns_note_window: 0 = never measured; turn_judged)
        out.update(turn_window_busy=float(m["win"]), turn_outs=int(m["outs"]))
    return out


def pair(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, arm: str, limits: tuple[int, int],
         secs: float) -> dict:
    """One run of the pair: per tenant its share and switch time (% of its wall), launches and turn figures."""
    progs = [[w.format(secs=secs) for w in prog] for prog in MIXED.get(case, (PROGRAMS.get(case),) * 2)]
    envs = [tenant_env(fake_dir, lib, tmp, n, lim, case, arm) for n, lim in zip("ab", limits, strict=True)]
    if case in SECOND:  # tenant B runs another program with its own environment
        other, env_b = SECOND[case]
        progs[1] = [w.format(secs=secs) for w in PROGRAMS[other]]
        envs[1] = tenant_env(fake_dir, lib, tmp, "b", limits[1], case, arm, env_b)
    if arm == "solo":  # tenant A alone, no library: what the pair's shares are read against
        progs, envs, limits = progs[:1], envs[:1], limits[:1]
    procs = [subprocess.Popen([str(app), "ctx", "0", *prog], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for prog, e in zip(progs, envs, strict=True)]
    tenants = []
    for p, lim, prog in zip(procs, limits, progs, strict=True):
        out, err = p.communicate(timeout=120)
        words = [ln.split() for ln in out.splitlines() if ln.startswith(prog[0] + " ")]
        if p.returncode != 0 or not words or words[-1][1] != "0":
            raise RuntimeError(f"driver_app failed ({p.returncode}): {err.strip()[-300:]}")
        t0, t1, gpu_s, n, sw_s = (float(x) for x in words[-1][2:7])
        wall = t1 - t0
        row = {"limit": lim, "share": 100 * gpu_s / wall, "switch": 100 * sw_s / wall, "launches": int(n),
               "wall_s": wall, **turn_stats(err)}
        stats = [ln.split("launch stats: ", 1)[1] for ln in err.splitlines() if "launch stats: " in ln]
        if stats and case in ("infer5", "infer2c", "jax"):  # pairover: the whole line, to read where the inference pair's charge comes from
            row["stats"] = stats[-1]
        if "held_idle_ms" in row:  # since trainfer: % of its wall
            row["held_idle"] = row["held_idle_ms"] / 10 / wall
        ctr_region = tmp / "ab"[len(tenants)] / "region"
        if ARMS[arm] is not None and ctr_region.exists():  # the library's charge (its region's busy time), % of wall
            with region.SharedRegion(ctr_region) as reg:
                row["charged"] = reg.busy_ns(0) / 1e7 / wall
        logs = sorted(ctr_region.parent.glob("turns.*")) if TURNS_LOG else []
        if logs:  # judgeab: the tenant's judgements (its process's file), summarised
            log = turns_log.read_log(logs[-1])
            row["tlog"], row["tlog_lines"] = turns_log.summarise(log), log["judgements"]
        tenants.append(row)
    return {"tenants": tenants, "useful": sum(t["share"] for t in tenants),
            "switch": sum(t["switch"] for t in tenants), "launches": sum(t["launches"] for t in tenants)}


def parse_pairs(ap: argparse.ArgumentParser, text: str) -> list[tuple[int, int]]:
    out = []
    for item in (x for x in text.split(",") if x):
        a, sep, b = item.partition("+")
        if not sep or not a.isdigit() or not b.isdigit() or not (1 <= int(a) <= 99 and 1 <= int(b) <= 99):
            ap.error(f"--pairs {item!r}: expected A+B with each limit in 1..99")
        out.append((int(a), int(b)))
    if not out:
        ap.error("--pairs: at least one pair")
    return out


def span(xs: list[float], fmt: str) -> str:
    return f"{min(xs):{fmt}}-{max(xs):{fmt}} ({statistics.median(xs):{fmt}})"


def per_tenant(runs: list[dict], key: str, fmt: str) -> str:
    """A / B: each tenant's median of a turns figure over the runs, '-' where the line had none (knob off)."""
    cells = []
    for i in (0, 1):
        xs = [r["tenants"][i][key] for r in runs if len(r["tenants"]) > i and key in r["tenants"][i]]
        cells.append(f"{statistics.median(xs):{fmt}}" if xs else "-")
    return " / ".join(cells)


def tenant_span(runs: list[dict], i: int, key: str, fmt: str) -> str:
    """span() of tenant i's figure over the runs, '-' where it did not run (arm solo)."""
    xs = [r["tenants"][i][key] for r in runs if len(r["tenants"]) > i]
    return span(xs, fmt) if xs else "-"


def pair_charged(runs: list[dict]) -> str:
    """The pair's charges summed (% of the wall), min-max (median) over the runs; '-' without the library."""
    xs = [sum(t["charged"] for t in r["tenants"]) for r in runs if all("charged" in t for t in r["tenants"])]
    return span(xs, ".1f") if xs else "-"


def markdown(result: dict, note: str) -> str:
    lines = record_title("HAMI_SM_TURNS, fake libcuda", result, note)
    lines += [f"Fake GPU: {result['fake']}. Rounds: {result['rounds']}, arms interleaved. Each cell: min-max (median) "
              "over the rounds. Share and switch: % of the tenant's wall time; useful: the pair's shares summed "
              "(the GPU's useful time, 100 = all of it); turns held: the holds by another's window, ms "
              "(longest).", "",
              "Turns on: the time turns were on, ms, each tenant's (A / B, medians); demand for turns: each tenant's "
              "last estimate (lending.c turn_bp), A / B, medians.", "",
              "Charged: each tenant's charge (the library's GPU-time charge, its region's busy time) as % of its wall, "
              "A / B, medians; pair charged: their sum. Idle: the fake GPU's time neither useful nor switching (100 - "
              "useful - switch). Held idle: the credit waits with none of the tenant's work on the GPU, % of its wall "
              "(A / B, medians; '-': a build from before trainfer).", "",
              "| case | limits | arm | A share % | B share % | useful % | switch % | launches | turns held ms "
              "(longest) | turns on ms | demand for turns % | charged % | pair charged % | idle % | held idle % | B launches |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        runs = row["runs"]
        held = [sum(t.get("turn_held_ms", 0.0) for t in r["tenants"]) for r in runs]
        longest = max((t.get("turn_longest_ms", 0.0) for r in runs for t in r["tenants"]), default=0.0)
        lines.append(f"| {row['case']} | {row['limits']} | {row['arm']} | "
                     f"{span([r['tenants'][0]['share'] for r in runs], '.1f')} | "
                     f"{tenant_span(runs, 1, 'share', '.1f')} | {span([r['useful'] for r in runs], '.1f')} | "
                     f"{span([r['switch'] for r in runs], '.2f')} | {span([r['launches'] for r in runs], '.0f')} | "
                     f"{span(held, '.0f')} ({longest:.0f}) | {per_tenant(runs, 'turns_on_ms', '.0f')} | "
                     f"{per_tenant(runs, 'turn_demand', '.1f')} | {per_tenant(runs, 'charged', '.1f')} | "
                     f"{pair_charged(runs)} | {span([100 - r['useful'] - r['switch'] for r in runs], '.1f')} | "
                     f"{per_tenant(runs, 'held_idle', '.1f')} | "
                     f"{tenant_span(runs, 1, 'launches', '.0f')} |")
    logged = [row for row in result["rows"] if any("tlog" in t for r in row["runs"] for t in r["tenants"])]
    if logged:
        lines += ["", "Turns log (--turns-log; csrc/turns.c turns_log, bench/turns_log.py): per tenant, summed over the "
                  "runs, its stay-test judgements (in / miss / out), and at the judgements in and below the bound (miss "
                  "or out) the coarse share of its kernels (kc / (kp + kc)), the figure judged and the other rule's "
                  "figure (coarse_rule 0: precise kernels over its windows' time scaled to the precise share; 1: "
                  "coarse estimates counted, its windows' time whole), % min-max (median) over the judgements.", "",
                  "| case | limits | arm | tenant | judged | in / miss / out | coarse % at in | coarse % below | "
                  "busy % at in | busy % below | other rule's % below |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in logged:
            for i in (0, 1):
                js = [j for r in row["runs"] if len(r["tenants"]) > i
                      for j in r["tenants"][i].get("tlog_lines", [])]
                if not js:
                    continue
                low = [j for j in js if j["verdict"] != "in"]
                hi = [j for j in js if j["verdict"] == "in"]
                counts = " / ".join(str(sum(j["verdict"] == v for j in js)) for v in turns_log.VERDICTS)
                lines.append(f"| {row['case']} | {row['limits']} | {row['arm']} | {'AB'[i]} | {len(js)} | {counts} | "
                             f"{_jspan(hi, turns_log.coarse_pct)} | {_jspan(low, turns_log.coarse_pct)} | "
                             f"{_jspan(hi, lambda j: j['busy_bp'] / 100)} | {_jspan(low, lambda j: j['busy_bp'] / 100)} | "
                             f"{_jspan(low, lambda j: j['alt_bp'] / 100)} |")
    return "\n".join(lines) + "\n"


def _jspan(js: list[dict], fn) -> str:
    return span([fn(j) for j in js], ".1f") if js else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap)
    ap.add_argument("--pairs", default="30+70,50+50", help="the GPU-bound pairs' limits, A+B,...")
    ap.add_argument("--arms", default="native,off,on", help="comma-separated subset of " + ", ".join(ARMS))
    ap.add_argument("--cases", default="bound", help="the GPU-bound programs, a subset of " + ",".join(GPU_CASES))
    ap.add_argument("--no-launch-bound", action="store_true", help="leave the launch-bound pair out")
    ap.add_argument("--gate-holds", type=int, choices=(0, 1), default=0,
                    help="the fake GPU's choice for a context blocked on a stream wait (gatemarks): 1 it keeps the "
                         "GPU, idle, until released or its slice ends; 0 (default) it is switched out at once")
    ap.add_argument("--switch-us", type=int, default=200,
                    help="the fake GPU's context switch cost, us (0..5000; default 200): a costlier switch, as the "
                         "H100's graphs pair time-slicing at 59 %% of solo, shows what time-slicing costs a pair")
    ap.add_argument("--turns-log", action="store_true",
                    help="each library tenant writes HAMI_SM_TURNS_LOG (a line per stay-test judgement); each row "
                         "keeps its judgements and the record a table of them (judgeab)")
    a = ap.parse_args()
    check_round_args(ap, a)
    global TURNS_LOG
    TURNS_LOG = a.turns_log
    if not 0 <= a.switch_us <= 5000:
        ap.error(f"--switch-us {a.switch_us}: must be 0..5000")
    SLICED["FAKE_CUDA_SWITCH_US"] = str(a.switch_us)
    SLICED["FAKE_CUDA_GATE_HOLDS"] = str(a.gate_holds)
    pairs = parse_pairs(ap, a.pairs)
    arms = [x for x in a.arms.split(",") if x]
    if not arms or any(x not in ARMS for x in arms):
        ap.error(f"--arms {a.arms!r}: expected a comma-separated subset of {', '.join(ARMS)}")
    cases = [x for x in a.cases.split(",") if x]
    if not cases or any(x not in GPU_CASES for x in cases):
        ap.error(f"--cases {a.cases!r}: expected a comma-separated subset of {', '.join(GPU_CASES)}")
    plan = [(c, p) for c in cases for p in pairs] + ([] if a.no_launch_bound else [("launch", (50, 50))])
    rows: dict[tuple[str, tuple[int, int], str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="hami-turns-") as d:
        tmp = Path(d)
        fake_dir, app = build_tools(tmp)
        libs = build_libs(ap, a.lib, tmp / "lib")
        # with two or more --lib builds, each library arm runs with each build ("on@NAME"), all interleaved
        labels = {(arm if len(libs) == 1 or arm == "native" else f"{arm}@{name}"): (arm, lib)
                  for arm in arms for name, lib in libs.items()}
        for n, (case, limits), label in alternating(a.rounds, plan, list(labels)):
            arm, lib = labels[label]
            rows.setdefault((case, limits, label), []).append(
                pair(app, fake_dir, lib, tmp / f"run{n}", case, arm, limits, a.seconds))
    result = {**record_head(a, fake=", ".join(f"{k}={v}" for k, v in SLICED.items()), seconds=a.seconds),
              "rows": [{"case": c, "limits": f"{lim[0]}+{lim[1]}", "arm": arm, "runs": runs}
                       for (c, lim, arm), runs in rows.items()]}
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    sys.exit(main())
