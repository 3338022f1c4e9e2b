"""npu-smi parsers on the recorded formats, and on malformed output: truncated, unknown columns, garbage."""

from __future__ import annotations

import pytest

from hami_hal.vendor_tool import ToolError
from hami_plugins_ascend import npu_smi_parse as p


def test_info_910b4_1_eight_chips(recorded):
    rows = p.parse_info(recorded("npu-smi-info-910b4-1.txt"))
    assert [r.npu_id for r in rows] == list(range(8))
    first = rows[0]
    assert (first.name, first.health, first.bus_id) == ("910B4-1", "OK", "0000:C1:00.0")
    assert (first.hbm_used_mib, first.hbm_total_mib, first.power_w, first.temp_c) == (60810, 65536, 91.9, 35.0)
    assert rows[3].aicore_percent == 12.0
    assert rows[4].health == "Warning"


def test_info_310p3_memory_column_without_hbm(recorded):
    (row,) = p.parse_info(recorded("npu-smi-info-310p3.txt"))
    assert (row.npu_id, row.chip_id, row.name) == (4, 0, "310P3")
    assert (row.hbm_used_mib, row.hbm_total_mib) == (1848, 21525)
    assert row.power_w is None  # "NA"


def test_info_910c_two_dies_per_card_and_logic_ids(recorded):
    rows = p.parse_info(recorded("npu-smi-info-910c.txt"))
    assert [(r.npu_id, r.chip_id) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert rows[1].power_w is None  # "-" on the second die
    assert p.parse_chip_map(recorded("npu-smi-info-m-910c.txt")) == {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 3}


def test_info_truncated_output_names_the_line(recorded):
    text = recorded("npu-smi-info-910b4-1.txt")
    cut = text[: text.index("| 0000:C2:00.0") - 30]
    with pytest.raises(ToolError, match="truncated output: line"):
        p.parse_info(cut)


def test_info_unknown_extra_column_is_kept_aside(recorded):
    text = recorded("npu-smi-info-310p3.txt")
    text = text.replace("Memory-Usage(MB)                        |", "Memory-Usage(MB)  ECC-Errors(n)         |")
    text = text.replace("1848 / 21525                            |", "1848 / 21525      0                     |")
    (row,) = p.parse_info(text)
    assert row.hbm_total_mib == 21525 and row.extra.get("ECC-Errors(n)") == "0"


@pytest.mark.parametrize("text, match", [
    ("", "no chip table header"),
    ("Segmentation fault\n", "no chip table header"),
    ("| NPU Name | Health | Power(W) |\n| Chip | Bus-Id | Foo |\n", "lacks Power"),
])
def test_info_garbage_is_one_line(text, match):
    with pytest.raises(ToolError, match=match) as err:
        p.parse_info(text)
    assert "\n" not in str(err.value)


def test_info_bad_bus_id_and_bad_number(recorded):
    text = recorded("npu-smi-info-310p3.txt")
    with pytest.raises(ToolError, match="bus id"):
        p.parse_info(text.replace("0000:81:00.0", "not-a-bus   "))
    with pytest.raises(ToolError, match="Temp"):
        p.parse_info(text.replace("NA           37 ", "NA           hot"))


def test_chip_map_without_header(recorded):
    with pytest.raises(ToolError, match="header"):
        p.parse_chip_map("0 0 0 Ascend\n")


def test_template_info(recorded):
    rows = p.parse_template_info(recorded("npu-smi-template-info-910b3.txt"))
    assert [(r.name, r.aicore, r.memory_gb, r.aicpu) for r in rows] == [("vir05_1c_16g", 5, 16, 1),
                                                                        ("vir10_3c_32g", 10, 32, 3)]


def test_template_info_truncated_and_empty(recorded):
    text = recorded("npu-smi-template-info-910b3.txt")
    with pytest.raises(ToolError, match="no '==' line"):
        p.parse_template_info(text.split("|=====")[0])
    with pytest.raises(ToolError, match="no template rows"):
        p.parse_template_info(text.split("|vir05")[0])


def test_vnpu_info_and_truncation(recorded):
    rows = p.parse_vnpu_info(recorded("npu-smi-info-vnpu-910b3.txt"))
    assert [(v.vnpu_id, v.in_use, v.template) for v in rows] == [(100, True, "vir10_3c_32g"),
                                                                 (101, False, "vir05_1c_16g")]
    cut = recorded("npu-smi-info-vnpu-910b3.txt").split("|  101")[0]
    with pytest.raises(ToolError, match="1 of 2 vNPUs"):
        p.parse_vnpu_info(cut)


def test_status_lines(recorded):
    assert p.parse_status(recorded("npu-smi-create-vnpu-ok.txt"), "create") == "Create vnpu success"
    with pytest.raises(ToolError, match="create: FAILED: The resources are insufficient"):
        p.parse_status(recorded("npu-smi-create-vnpu-failed.txt"), "create")
    with pytest.raises(ToolError, match="no 'Status"):
        p.parse_status("", "create")


def test_info_absurd_memory_is_refused(recorded):
    text = recorded("npu-smi-info-310p3.txt").replace("1848 / 21525     ", "1848 / 9999999999")
    with pytest.raises(ToolError, match="out of range"):
        p.parse_info(text)


def test_info_without_a_memory_column(recorded):
    """Found by the fuzz test: a header whose memory column name is garbled is one line, not a KeyError."""
    text = recorded("npu-smi-info-310p3.txt").replace("Memory-Usage(MB)", "Memory-Usxge(MB)")
    with pytest.raises(ToolError, match="no HBM-Usage\\(MB\\) or Memory-Usage\\(MB\\) column"):
        p.parse_info(text)
