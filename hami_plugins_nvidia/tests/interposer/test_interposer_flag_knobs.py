"""On/off flags read one way (env.c flag_knob): 1/true/yes on, 0/false/no off, anything else named in one line.

Before, a flag's unrecognised value ("on", "enable", " 1") was read silently as off: an operator who wrote
HAMI_PROC_CENSUS_REQUIRED=on believed the bound failed closed while it failed open. Now such a value is one warning
naming the variable and the value, and what applies instead is the safe side: off for the A/B and diagnostic flags
and for CUDA_DISABLE_CONTROL (every limit kept), on for HAMI_PROC_CENSUS_REQUIRED (charged as if alone)."""

from __future__ import annotations

import pytest

from .conftest import Workload, fake_only

pytestmark = [fake_only]

OFF_WHEN_BAD = ["HAMI_WATCHER_FLAT_RAMP", "HAMI_WATCHER_COARSE_PAIR", "HAMI_SM_PRECISE", "HAMI_SM_NO_LEND",
                "HAMI_SM_GAP_EVERY_LAUNCH", "HAMI_LAUNCH_STATS", "CUDA_DISABLE_CONTROL"]
BAD = ["on", "2", " 1", "enable"]


def _launch(workload: Workload, **env: str) -> str:
    """One launch alone at force 70; returns stderr."""
    workload.env.update(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="70", **env)
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    return r.stderr


def _named_once(stderr: str, knob: str, bad: str, applies: str) -> None:
    lines = [ln for ln in stderr.splitlines() if f'{knob}="' in ln]
    assert len(lines) == 1, stderr
    assert f'"{bad}"' in lines[0] and "expected 1 or 0" in lines[0] and applies in lines[0], lines[0]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("knob", OFF_WHEN_BAD)
def test_a_bad_flag_is_named_in_one_line_and_left_off(workload: Workload, knob: str, bad: str) -> None:
    _named_once(_launch(workload, **{knob: bad}), knob, bad, "it is off")


@pytest.mark.parametrize("text,stats", [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("False", False),
                                        ("no", False), ("", False), ("on", False)])
def test_the_launch_stats_flag_reads_every_spelling(workload: Workload, text: str, stats: bool) -> None:
    # the flag with an observable effect of its own: the stats line at exit is there exactly when it is on
    stderr = _launch(workload, HAMI_LAUNCH_STATS=text)
    assert ("launch stats:" in stderr) == stats, stderr


def test_a_bad_disable_control_keeps_the_memory_limit(workload: Workload) -> None:
    r = workload.run("ctx", "0", "alloc", "3g", "alloc", "512m", CUDA_DEVICE_MEMORY_LIMIT="1g",
                     CUDA_DISABLE_CONTROL="ture")
    _named_once(r.stderr, "CUDA_DISABLE_CONTROL", "ture", "it is off")
    assert "passing every call through" not in r.stderr
    assert r.values("alloc")[0][0] == "err" and r.values("alloc")[1] == ["ok", "0"], r.stderr  # the 1g limit held


@pytest.mark.parametrize("bad", BAD)
def test_a_bad_census_required_fails_closed(workload: Workload, bad: str) -> None:
    _named_once(_launch(workload, HAMI_PROC_CENSUS_REQUIRED=bad), "HAMI_PROC_CENSUS_REQUIRED", bad, "it is on")
