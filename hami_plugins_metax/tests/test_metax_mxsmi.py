"""mx-smi parsers on recorded output (formats written from public usage; see the fixture headers), on
malformed output, and the real port against a tool that fails or hangs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hami_plugins_metax.mxsmi import parse_memory, parse_numa, parse_summary, parse_topology
from hami_plugins_metax.port import RealMxSmi
from hami_plugins_metax.topology import link_zones

from hami_hal.errors import BackendUnavailable
from hami_hal.vendor_tool import ToolError

DATA = Path(__file__).parent / "data"


def read_fixture(name: str) -> str:
    """A recorded fixture without its '#' provenance header."""
    return "".join(ln for ln in DATA.joinpath(name).read_text().splitlines(keepends=True) if not ln.startswith("#"))


def test_summary_recorded():
    s = parse_summary(read_fixture("mx-smi.txt"))
    assert (s.driver_version, s.maca_version) == ("2.32.0", "2.29.0.19")
    assert [g.index for g in s.gpus] == list(range(8))
    g0 = s.gpus[0]
    assert (g0.model, g0.bus_id, g0.used_mib, g0.total_mib, g0.utilization_pct) == (
        "MetaX C500", "0000:10:00.0", 858, 65536, 0)


def test_memory_recorded():
    mem = parse_memory(read_fixture("mx-smi-show-memory.txt"))
    assert mem[0] == (858, 65536) and mem[7] == (0, 65536)


def test_topology_recorded_gives_two_zones():
    text = read_fixture("mx-smi-topo-m.txt")
    pairs = parse_topology(text)
    assert pairs[(0, 3)] == "MX" and pairs[(3, 4)] == "SYS"
    assert link_zones(pairs, list(range(8))) == {0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2}
    assert parse_numa(text) == {i: (0 if i < 4 else 1) for i in range(8)}


def test_summary_truncated():
    text = read_fixture("mx-smi.txt")
    with pytest.raises(ToolError, match="Attached GPUs says 8, 3 GPU rows read|no memory row"):
        parse_summary(text[: text.index("| 3 ")])


def test_summary_without_banner_or_count():
    with pytest.raises(ToolError, match="no 'Attached GPUs' line"):
        parse_summary("| 0  MetaX C500 | 0000:10:00.0 | 0% |\n")
    text = read_fixture("mx-smi.txt").replace("Kernel Mode Driver Version", "KMD")
    with pytest.raises(ToolError, match="Kernel Mode Driver Version"):
        parse_summary(text)


def test_summary_unknown_columns_are_not_guessed():
    text = read_fixture("mx-smi.txt").replace("| 0%                   |", "| 0%   | 1  |")
    with pytest.raises(ToolError, match="rows read"):
        parse_summary(text)


def test_summary_impossible_memory():
    text = read_fixture("mx-smi.txt").replace("858/65536 MiB", "99999/65536 MiB")
    with pytest.raises(ToolError, match="memory 99999/65536 MiB is impossible"):
        parse_summary(text)


def test_memory_truncated_and_orphan():
    text = read_fixture("mx-smi-show-memory.txt")
    with pytest.raises(ToolError, match="GPU#7 lacks vis_vram"):
        parse_memory(text[: text.rindex("vis_vram used")])
    with pytest.raises(ToolError, match="before any GPU# header"):
        parse_memory("    vis_vram total : 1 KB\n")
    with pytest.raises(ToolError, match="no GPU listed"):
        parse_memory("")


def test_topology_unknown_code_and_asymmetry():
    text = read_fixture("mx-smi-topo-m.txt")
    with pytest.raises(ToolError, match="unknown link code 'NV4'"):
        parse_topology(text.replace("GPU0\tX\tMX", "GPU0\tX\tNV4", 1))
    with pytest.raises(ToolError, match="one way"):
        parse_topology(text.replace("GPU0\tX\tMX", "GPU0\tX\tSYS", 1))
    with pytest.raises(ToolError, match="no GPU matrix"):
        parse_topology("Legend:\n")


def _tool(tmp_path, monkeypatch, body: str) -> None:
    script = tmp_path / "mx-smi"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")


def test_real_tool_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailable, match="mx-smi not found"):
        RealMxSmi().summary()


def test_real_tool_nonzero_exit(tmp_path, monkeypatch):
    _tool(tmp_path, monkeypatch, 'echo "open /dev/mxcd failed" >&2; exit 2')
    with pytest.raises(ToolError, match="exit status 2: open /dev/mxcd failed"):
        RealMxSmi().memory()


def test_real_tool_hangs(tmp_path, monkeypatch):
    _tool(tmp_path, monkeypatch, "sleep 5")
    with pytest.raises(ToolError, match=r"no answer within 0.3 s"):
        RealMxSmi(timeout_s=0.3).topology()


def test_list_uuids_and_bad_lines():
    from hami_plugins_metax.mxsmi import parse_list

    assert parse_list("GPU 0: MetaX C500 (UUID: GPU-abc)\nGPU 1: MetaX C500 (UUID: GPU-def)\n") == {0: "GPU-abc", 1: "GPU-def"}
    with pytest.raises(ToolError, match="unrecognised line"):
        parse_list("GPU 0: MetaX C500\n")
    with pytest.raises(ToolError, match="repeated"):
        parse_list("GPU 0: A (UUID: x)\nGPU 0: A (UUID: y)\n")


def test_broken_tool_skips_the_plugin_with_one_line(tmp_path, monkeypatch):
    from hami_plugins_metax.discovery import discover

    from hami_hal.context import NodeContext

    _tool(tmp_path, monkeypatch, 'echo "open /dev/mxcd failed" >&2; exit 2')
    with pytest.raises(BackendUnavailable, match="exit status 2: open /dev/mxcd failed"):
        discover(RealMxSmi(), NodeContext("real", "n"))
