"""xpu-smi parsers on recorded output (formats written from public usage, see the fixture headers), on
malformed output, and the real port against a tool that fails or hangs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hami_plugins_kunlun.port import RealXpuSmi
from hami_plugins_kunlun.xpusmi import parse_machine, parse_query

from hami_hal.errors import BackendUnavailable
from hami_hal.vendor_tool import ToolError

DATA = Path(__file__).parent / "data"


def read_fixture(name: str) -> str:
    """A recorded fixture without its '#' provenance header."""
    return "".join(ln for ln in DATA.joinpath(name).read_text().splitlines(keepends=True) if not ln.startswith("#"))


def test_machine_table_recorded():
    rows = parse_machine(read_fixture("xpu-smi-m.txt"))
    assert [r.index for r in rows] == list(range(8))
    assert rows[0].total_mib == 98304 and rows[0].used_mib == 1024 and rows[0].utilization_pct == 3
    assert rows[7].used_mib == 40960 and rows[7].utilization_pct == 97


def test_query_recorded():
    rec = parse_query(read_fixture("xpu-smi-q-0.txt"))
    assert (rec.model, rec.bus_id, rec.driver_version, rec.runtime_version) == (
        "P800 OAM", "0000:2a:00.0", "5.0.21.16", "5.0.21")
    assert (rec.total_mib, rec.used_mib, rec.utilization_pct) == (98304, 1024, 3)
    assert rec.temperature_c == 41 and rec.power_w == 96.5


def test_machine_truncated_line_is_refused():
    text = read_fixture("xpu-smi-m.txt")
    cut = text[: text.index("\n", 200) - 30]
    with pytest.raises(ToolError, match=r"line 3 has \d+ fields, expected 32"):
        parse_machine(cut)


def test_machine_unknown_columns_are_refused():
    line = read_fixture("xpu-smi-m.txt").splitlines()[0] + " extra"
    with pytest.raises(ToolError, match="33 fields, expected 32"):
        parse_machine(line)


@pytest.mark.parametrize("bad, match", [
    ("", "no card listed"),
    ("xpu x" + " 0" * 30, "field 2 \\(card index\\): 'x'"),
    ("xpu 0" + " 0" * 15 + " 99999 98304 0" + " 0" * 12, "impossible"),
    ("xpu 0" + " 0" * 15 + " 0 98304 101" + " 0" * 12, "above 100"),
])
def test_machine_bad_values(bad, match):
    with pytest.raises(ToolError, match=match):
        parse_machine(bad)


def test_machine_duplicate_card():
    line = read_fixture("xpu-smi-m.txt").splitlines()[1]
    with pytest.raises(ToolError, match="listed twice"):
        parse_machine(line + "\n" + line)


def test_query_truncated_is_refused():
    text = read_fixture("xpu-smi-q-0.txt")
    with pytest.raises(ToolError, match="lacks 'Used'|missing"):
        parse_query(text[: text.index("Used")])


def test_query_unknown_labels_are_ignored_and_missing_ones_named():
    text = read_fixture("xpu-smi-q-0.txt").replace("Product Name", "Model Name")
    with pytest.raises(ToolError, match="label 'Product Name' missing"):
        parse_query(text)
    extra = read_fixture("xpu-smi-q-0.txt") + "New Vendor Field               : 7\n"
    assert parse_query(extra).model == "P800 OAM"


def test_query_wrong_unit():
    text = read_fixture("xpu-smi-q-0.txt").replace("98304 MiB", "96 GiB")
    with pytest.raises(ToolError, match="Memory Usage/Total: '96 GiB' is not a number in MiB"):
        parse_query(text)


def _tool(tmp_path, monkeypatch, body: str) -> None:
    script = tmp_path / "xpu-smi"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")


def test_real_tool_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackendUnavailable, match="xpu-smi not found"):
        RealXpuSmi().machine()


def test_real_tool_nonzero_exit(tmp_path, monkeypatch):
    _tool(tmp_path, monkeypatch, 'echo "xpu driver not loaded" >&2; exit 3')
    with pytest.raises(ToolError, match="exit status 3: xpu driver not loaded"):
        RealXpuSmi().machine()


def test_real_tool_hangs(tmp_path, monkeypatch):
    _tool(tmp_path, monkeypatch, "sleep 5")
    with pytest.raises(ToolError, match=r"no answer within 0.3 s \(tool hangs; killed\)"):
        RealXpuSmi(timeout_s=0.3).machine()


def test_real_tool_is_intel(tmp_path, monkeypatch):
    _tool(tmp_path, monkeypatch, 'echo "Intel(R) XPU System Management Interface -- v1.0"')
    with pytest.raises(ToolError, match="Intel's xpu-smi"):
        RealXpuSmi().machine()


def test_real_tool_output_parsed(tmp_path, monkeypatch):
    m = tmp_path / "m.txt"
    m.write_text(read_fixture("xpu-smi-m.txt"))
    _tool(tmp_path, monkeypatch, f'cat "{m}"')
    assert len(parse_machine(RealXpuSmi().machine())) == 8


def test_broken_tool_skips_the_plugin_with_one_line(tmp_path, monkeypatch):
    """A tool that is there but fails or hangs makes discovery 'unavailable' (plugin skipped), not a crash."""
    from hami_plugins_kunlun.discovery import discover

    from hami_hal.context import NodeContext

    _tool(tmp_path, monkeypatch, "sleep 5")
    with pytest.raises(BackendUnavailable, match="no answer within 0.3 s"):
        discover(RealXpuSmi(timeout_s=0.3), NodeContext("real", "n"))
