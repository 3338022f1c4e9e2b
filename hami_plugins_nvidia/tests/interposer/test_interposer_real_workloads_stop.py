"""real_workloads.py keeps what a stopped step measured (issue 18, record 5: on the H200 three training steps ran
past their `timeout` and wrote no JSON, only the per-run log). A step stopped by SIGTERM now writes the rows of the
runs it finished, marked incomplete, and --rebuild-from-log writes the same rows from a stopped step's log. Pure
Python: the bench's own functions with a stand-in for the GPU workers."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture()
def mod():
    spec = importlib.util.spec_from_file_location("hami_real_workloads_stop", BENCH / "real_workloads.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    m.REPEAT = 3
    return m


class StandIn:
    """Bench's run/pair: each run's rate from a table by label; raises Stopped once `stop_after` runs are done,
    as the SIGTERM handler does mid-step. Every finished run is logged as Bench.finish logs it."""

    def __init__(self, mod, rates: dict[str, float], stop_after: int | None = None) -> None:
        self.mod, self.rates, self.stop_after, self.done, self.log = mod, rates, stop_after, 0, []

    def _one(self, label: str) -> dict:
        if self.stop_after is not None and self.done >= self.stop_after:
            raise self.mod.Stopped
        self.done += 1
        res = {"kind": "train", "unit": "tokens/s", "rate": self.rates.get(label, 100.0), "gpu_busy_fraction": 0.3}
        self.log.append(f"{label}: {json.dumps(res)}")
        return res

    def run(self, label: str, *_a, **_k) -> dict:
        return self._one(label)

    def pair(self, label: str, *_a, **_k) -> list[dict]:
        return [self._one(f"{label}[{i}]") for i in range(2)]


RATES = {"train solo native #0": 200.0, "train alone 10 force #0": 20.0, "train alone 10 force #1": 21.0,
         "train alone 10 force #2": 19.0, "train alone 30 force #0": 61.0, "train alone 30 force #1": 59.0}


def test_a_stopped_step_keeps_the_rows_of_the_runs_it_finished(mod) -> None:
    out: dict = {}
    b = StandIn(mod, RATES, stop_after=6)  # solo, three runs at 10, two at 30, then SIGTERM
    with pytest.raises(mod.Stopped):
        mod.part_share(b, 4, out, kinds=("train",), alone=(10, 30, 50), solos=2, flags="x")
    rows = {r["limit"]: r for r in out["train"]["rows"]}
    assert out["train"]["solo_native"] == [200.0]
    assert rows[10]["runs"] == [10.0, 10.5, 9.5] and rows[10]["achieved"] == 10.0
    assert rows[30]["runs"] == [30.5, 29.5]
    assert 50 not in rows  # never reached: no row rather than an empty one


def test_rebuild_from_the_log_gives_the_rows_the_run_gave(mod) -> None:
    full: dict = {}
    b = StandIn(mod, RATES)
    mod.part_share(b, 4, full, kinds=("train",), alone=(10, 30), solos=2, flags="n")
    rebuilt = mod.rebuild_share(b.log, ["train"], {"train": (10, 30)})
    assert rebuilt["train"]["rows"] == full["train"]["rows"]
    assert rebuilt["train"]["solo_native"] == full["train"]["solo_native"]


def test_rebuild_drops_a_pair_missing_its_second_tenant_and_other_programs(mod) -> None:
    b = StandIn(mod, RATES)
    mod.part_share(b, 4, {}, kinds=("train",), alone=(10,), solos=1, flags="")
    lines = [*b.log, 'infer alone 10 force #0: {"rate": 5.0}', 'train pair 30+70 #9[0]: {"rate": 50.0}',
             "train policy A: {}"]
    rows = mod.rebuild_share(lines, ["train"], {"train": (10,)})["train"]["rows"]
    pairs = [r for r in rows if r["case"].startswith("pair 30 + 70")]
    assert len(pairs) == 1 and len(pairs[0]["runs"]) == 3  # REPEAT whole pairs; the lone #9[0] left out


def test_rebuild_from_log_cli_writes_an_incomplete_json_with_the_stage_device(mod, tmp_path: Path) -> None:
    b = StandIn(mod, RATES, stop_after=6)
    with pytest.raises(mod.Stopped):
        mod.part_share(b, 4, {}, kinds=("train",), alone=(10, 30, 50), solos=2, flags="x")
    (tmp_path / "device.txt").write_text("NVIDIA H200, 580.159.04, 143771 MiB, 1980 MHz\ncommit abc dirty=0\n")
    step = tmp_path / "train-low"
    step.mkdir()
    (step / "real-share.log").write_text("\n".join(b.log) + "\n")
    cmd = [sys.executable, str(BENCH / "real_workloads.py"), "--part", "share", "--plan", "train:10,30,50:2:x",
           "--rebuild-from-log", str(step / "real-share.log"), "--out", str(step)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    data = json.loads(next(step.glob("*-real-workloads-share.json")).read_text())
    assert data["device"].startswith("NVIDIA H200") and data["rebuilt_from_log"] == "real-share.log"
    assert "incomplete" in data
    assert [r["limit"] for r in data["train"]["rows"]] == [10, 30]
    bad = subprocess.run([*cmd[:5], "train:10;x", *cmd[6:]], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == ["--plan item 'train:10': expected KIND:LIMITS:SOLOS:FLAGS "
                                               "(e.g. train:10,30:3:pt)"]


def test_sigterm_raises_stopped(mod) -> None:
    with pytest.raises(mod.Stopped):
        mod._stop(15, None)
