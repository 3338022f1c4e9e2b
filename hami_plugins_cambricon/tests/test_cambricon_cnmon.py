"""cnmon parser on recorded output (format written from public usage; see the fixture header), on malformed
output, and the real port against a tool that fails or hangs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hami_plugins_cambricon.cnmon import parse_info
from hami_plugins_cambricon.port import RealCnmon

from hami_hal.errors import BackendUnavailable
from hami_hal.vendor_tool import ToolError

DATA = Path(__file__).parent / "data"


def read_fixture(name: str) -> str:
    """A recorded fixture without its '#' provenance header."""
    return "".join(ln for ln in DATA.joinpath(name).read_text().splitlines(keepends=True) if not ln.startswith("#"))


def test_info_recorded():
    cards = parse_info(read_fixture("cnmon-info.txt"))
    assert [c.index for c in cards] == [0, 1, 2, 3]
    c0 = cards[0]
    assert (c0.model, c0.bus_id, c0.driver_version, c0.total_mib, c0.used_mib, c0.ecc_errors) == (
        "MLU370-X8", "0000:10:00.0", "v5.10.22", 49152, 1024, None)


def test_info_truncated():
    text = read_fixture("cnmon-info.txt")
    with pytest.raises(ToolError, match="Card 3: 'Physical Memory Usage/(Total|Used)' missing"):
        parse_info(text[: text.rindex("    Total")])


def test_info_empty_and_orphan_lines():
    with pytest.raises(ToolError, match="no 'Card <n>' section"):
        parse_info("")
    with pytest.raises(ToolError, match="before any 'Card <n>' header"):
        parse_info("Product Name : MLU370-X8\n")


def test_info_unknown_labels_ignored_missing_named():
    text = read_fixture("cnmon-info.txt")
    assert len(parse_info(text.replace("Product Type", "Board Revision"))) == 4
    with pytest.raises(ToolError, match="'Product Name' missing"):
        parse_info(text.replace("Product Name", "Model"))


@pytest.mark.parametrize("old, new, match", [
    ("49152 MiB", "48 GiB", "is not a size in MiB"),
    ("Used                       : 1024 MiB", "Used                       : 99999 MiB", "impossible"),
    ("DDR ECC Err Count              : N/A", "DDR ECC Err Count              : lots", "not a count"),
    ("Card 1", "Card 0", "repeated"),
])
def test_info_bad_values(old, new, match):
    with pytest.raises(ToolError, match=match):
        parse_info(read_fixture("cnmon-info.txt").replace(old, new, 1))


def _tool(tmp_path, monkeypatch, body: str) -> None:
    script = tmp_path / "cnmon"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")


def test_real_tool_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("hami_plugins_cambricon.port.TOOL_DIRS", ())
    with pytest.raises(BackendUnavailable, match="cnmon not found"):
        RealCnmon().info()


def test_real_tool_nonzero_exit(tmp_path, monkeypatch):
    _tool(tmp_path, monkeypatch, 'echo "cndev init failed" >&2; exit 1')
    with pytest.raises(ToolError, match="exit status 1: cndev init failed"):
        RealCnmon().info()


def test_real_tool_hangs(tmp_path, monkeypatch):
    _tool(tmp_path, monkeypatch, "sleep 5")
    with pytest.raises(ToolError, match=r"no answer within 0.3 s"):
        RealCnmon(timeout_s=0.3).info()


def test_sysfs_numa(tmp_path):
    from hami_hal.vendor_tool import pci_numa_node as sysfs_numa

    dev = tmp_path / "bus" / "pci" / "devices" / "0000:3b:00.0"
    dev.mkdir(parents=True)
    (dev / "numa_node").write_text("1\n")
    assert sysfs_numa("0000:3B:00.0", tmp_path) == 1
    (dev / "numa_node").write_text("-1\n")
    assert sysfs_numa("0000:3b:00.0", tmp_path) is None
    assert sysfs_numa("../../etc/passwd", tmp_path) is None       # never a path outside sysfs
    assert sysfs_numa("0000:3c:00.0", tmp_path) is None


def test_broken_tool_skips_the_plugin_with_one_line(tmp_path, monkeypatch):
    from hami_plugins_cambricon.discovery import discover

    from hami_hal.context import NodeContext

    _tool(tmp_path, monkeypatch, 'echo "Card 0"; echo "Product Name : MLU370-X8"')   # truncated output
    with pytest.raises(BackendUnavailable, match="'Physical Memory Usage/Total' missing"):
        discover(RealCnmon(), NodeContext("real", "n"))
