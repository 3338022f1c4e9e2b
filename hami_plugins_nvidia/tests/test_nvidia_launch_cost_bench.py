"""The launch-cost bench's own arithmetic (bench/launch_cost.py): two-mode reporting of rates, launches per
step from the library's stats line, and the checks on its command-line values. No GPU needed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "launch_cost.py"


@pytest.fixture(scope="module")
def lc(load_script):
    return load_script("hami_launch_cost_bench_under_test", BENCH)


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
    assert lc.parse_variant("p=csrc::HAMI_SM_PRECISE=1") == ("p", Path("csrc"), [], {"HAMI_SM_PRECISE": "1"}, None)
    assert lc.parse_variant("w=csrc:HAMI_WATCHER_ALWAYS_HARVESTS") == ("w", Path("csrc"),
                                                                       ["HAMI_WATCHER_ALWAYS_HARVESTS"], {}, None)
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


def test_variant_cores_and_native_baselines(lc) -> None:
    assert lc.parse_variant("x2=csrc:::2,3") == ("x2", Path("csrc"), [], {}, {2, 3})
    assert lc.parse_variant("n2=native:::2,3") == ("n2", None, [], {}, {2, 3})
    assert lc.parse_variant("nolimit=csrc::CUDA_DEVICE_SM_LIMIT=") == ("nolimit", Path("csrc"), [],
                                                                        {"CUDA_DEVICE_SM_LIMIT": ""}, None)
    for bad in ("x=csrc:::2,a", "native=csrc", "n=native:HAMI_X", "n=native::A=1", "x=csrc:bad-define",
                "a b=csrc"):
        with pytest.raises(SystemExit, match="--variant"):
            lc.parse_variant(bad)


class _FakeBench:
    """Stands in for real_workloads.Bench: records each run (label, preload, cores, environment, library) and
    answers like programs.py infer with the library's stats line when preloaded and launch-controlled."""

    calls: list[dict] = []

    def __init__(self, lib, tmp, log) -> None:
        self.lib = lib

    def run(self, label, kind, seconds, preload, cpus=None, **extra) -> dict:
        self.calls.append({"label": label, "preload": preload, "cpus": cpus, "env": extra, "lib": self.lib})
        controlled = preload and extra.get("CUDA_DEVICE_SM_LIMIT") and \
            extra.get("GPU_CORE_UTILIZATION_POLICY") != "disable"
        res = {"rate": 150.0 if controlled else 190.0, "seconds": 3.0,
               "step_ms": {"p10": 5.0, "p50": 6.0, "p90": 7.0, "n": 450},
               "submit_ms": {"p50": 5.5}, "sync_ms": {"p50": 0.4, "p90": 0.6}}
        if controlled:
            res["launch_stats"] = ("87750 measured launches (95.0 % coarse); 95.0 % on the throttle's fast path; per "
                                   "launch 0.160 event records, 0.060 event queries, 0.160 elapsed-time calls; host us "
                                   "per launch (1 + 1 sampled, 40 ns per clock read taken off): before the launch 1.10, "
                                   "after the launch 0.40, lock 0.07; held 1 times, 170.0 ms")
        return res


def test_ladder_runs_each_rung_as_given_and_reverses_every_other_round(lc, tmp_path, monkeypatch) -> None:
    _FakeBench.calls = []
    builds = []
    monkeypatch.setattr(lc.rw, "Bench", _FakeBench)
    monkeypatch.setattr(lc.rw, "_device", lambda: "NVIDIA H200, 580.159.04")
    monkeypatch.setattr(lc, "build_variant", lambda name, csrc, defines, out: builds.append(defines) or
                        Path(f"/lib/{name}"))
    monkeypatch.setattr(sys, "argv", ["launch_cost.py", "--out", str(tmp_path), "--rounds", "2", "--ladder",
                                      "--variant", "nolimit=csrc::CUDA_DEVICE_SM_LIMIT=",
                                      "--variant", "force70=csrc:", "--variant", "nowatch=csrc:HAMI_BENCH_NO_WATCHER",
                                      "--variant", "native2=native:::2,3", "--variant", "force70x2=csrc:::2,3"])
    lc.main()
    assert sorted(builds) == [[], ["HAMI_BENCH_NO_WATCHER"]]  # one build per (sources, defines), built at once
    labels = [c["label"] for c in _FakeBench.calls]
    first = ["native #0", "nolimit #0", "force70 #0", "nowatch #0", "native2 #0", "force70x2 #0"]
    assert labels == first + [x.replace("#0", "#1") for x in reversed(first)]  # no pairs, no busy probe
    by = {c["label"]: c for c in _FakeBench.calls}
    assert by["nolimit #0"]["env"]["CUDA_DEVICE_SM_LIMIT"] == ""  # the rung's own environment wins
    assert by["force70 #0"]["env"]["CUDA_DEVICE_SM_LIMIT"] == "70"
    assert by["native2 #0"]["preload"] is False and by["native2 #0"]["cpus"] == {2, 3}
    assert by["force70x2 #0"]["cpus"] == {2, 3} and by["force70 #0"]["cpus"] == {2}
    assert by["nowatch #0"]["lib"] == Path("/lib/nowatch") and by["force70x2 #0"]["lib"] == Path("/lib/nolimit")
    data = json.loads((tmp_path / "launch-cost.json").read_text())
    assert [r["name"] for r in data["ladder"]] == ["nolimit", "force70", "nowatch", "native2", "force70x2"]
    assert data["rounds_done"] == 2 and data["pairs"] == {} and "busy_probe" not in data
    assert data["alone"]["force70"]["runs"][0]["sync_ms"] == {"p50": 0.4, "p90": 0.6}


def test_a_ladder_cut_short_keeps_every_run_it_finished(lc, tmp_path, monkeypatch) -> None:
    # stage 19's ladder runs under a timeout that may end it inside a round: the runs done by then are in the JSON
    # (before: only whole rounds were saved, so a cut second round lost its reversed half)
    class _Cut(_FakeBench):
        def run(self, label, *a, **k) -> dict:
            if len(self.calls) == 5:
                raise KeyboardInterrupt  # stands in for the step's timeout
            return super().run(label, *a, **k)

    _FakeBench.calls = []
    monkeypatch.setattr(lc.rw, "Bench", _Cut)
    monkeypatch.setattr(lc.rw, "_device", lambda: "NVIDIA H100 80GB HBM3, 580.159.04")
    monkeypatch.setattr(lc, "build_variant", lambda name, csrc, defines, out: Path(f"/lib/{name}"))
    monkeypatch.setattr(sys, "argv", ["launch_cost.py", "--out", str(tmp_path), "--rounds", "2", "--ladder",
                                      "--variant", "wrap=csrc:HAMI_BENCH_WRAP_ONLY", "--variant", "force70=csrc:",
                                      "--variant", "min=csrc:HAMI_BISECT_MIN"])
    with pytest.raises(KeyboardInterrupt):
        lc.main()
    data = json.loads((tmp_path / "launch-cost.json").read_text())
    assert data["rounds_done"] == 1  # native, wrap, force70, min; then the reversed round's min
    assert {k: len(v["rates"]) for k, v in data["alone"].items()} == {"native": 1, "wrap": 1, "force70": 1, "min": 2}


def test_save_with_nvml_figures_keeps_pair_sums_over_rates_only(lc, tmp_path) -> None:
    # record 14 (H100, stage 20): --nvml-util's native figures sat among the pairs' rate entries and save() failed
    # on the first repetition, losing the rest of the step
    out = {"pairs": {"native": [[270.0, 275.0]], "50+50 lib": {"rates": [[230.0, 233.0]], "charged": [[0.5, 0.48]],
                                                                "stats": [[None, None]], "nvml": [[[93.5, 97], [93.5, 90]]]}},
           "native_pair_nvml": [[[93.5, 99], [93.5, 98]]]}
    lc.save(tmp_path, out)
    got = json.loads((tmp_path / "launch-cost.json").read_text())
    assert got["pair_sum_pct_of_native_pair_median"] == {"native": [100.0], "50+50 lib": [85.0]}
    assert got["native_pair_nvml"] == [[[93.5, 99], [93.5, 98]]]


def test_pair_alternate_reverses_the_variants_every_other_repetition(lc, tmp_path, monkeypatch) -> None:
    # issue18_gpu.sh stage 32 (pairhost): an A/B of two variants' pairs on a host whose speed drifts (record 19's alone
    # windows: 114-290 passes/s within one call) runs lib, fix / fix, lib / lib, fix after each native pair; without
    # the flag the order stays as given (every earlier stage)
    class _Pairs(_FakeBench):
        def pair(self, label, kinds, seconds, envs, preload=True, cpus=(None, None)) -> list[dict]:
            self.calls.append({"label": label, "preload": preload, "cpus": cpus, "env": envs, "lib": self.lib})
            return [{"rate": 150.0, "gpu_busy_fraction": 0.45, "launch_stats": None} for _ in kinds]

    monkeypatch.setattr(lc.rw, "Bench", _Pairs)
    monkeypatch.setattr(lc.rw, "_device", lambda: "NVIDIA H100 80GB HBM3, 580.159.04")
    monkeypatch.setattr(lc, "build_variant", lambda name, csrc, defines, out: Path(f"/lib/{name}"))
    for alternate, want in ((True, ["lib", "fix", "fix", "lib", "lib", "fix"]),
                            (False, ["lib", "fix", "lib", "fix", "lib", "fix"])):
        _Pairs.calls = []
        monkeypatch.setattr(sys, "argv", ["launch_cost.py", "--out", str(tmp_path), "--alone", "rounds", "--rounds",
                                          "0", "--no-busy-probe", "--variant", "lib=csrc:", "--variant",
                                          "fix=csrc::HAMI_WATCHER_FLAT_RAMP=1", "--pairs", "lib,fix", "--pair-limits",
                                          "50+50", "--pair-repeat", "3", *(["--pair-alternate"] if alternate else [])])
        lc.main()
        labels = [c["label"] for c in _Pairs.calls]
        assert labels[::3] == ["pair native #0", "pair native #1", "pair native #2"], labels
        arms = [lab.split()[2] for lab in labels if "native" not in lab]
        assert arms == want, labels
        fix = [c for c in _Pairs.calls if " fix " in c["label"]]
        assert all(e["HAMI_WATCHER_FLAT_RAMP"] == "1" and e["CUDA_DEVICE_SM_LIMIT"] == "50" for c in fix
                   for e in c["env"]) and fix[0]["lib"] == Path("/lib/lib")  # one build: the knob is environment
        data = json.loads((tmp_path / "launch-cost.json").read_text())
        assert len(data["pairs"]["50+50 lib"]["rates"]) == 3 and len(data["pairs"]["50+50 fix"]["rates"]) == 3
