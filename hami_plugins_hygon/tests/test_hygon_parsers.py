"""hy-smi parsers on the recorded formats, and on malformed output: truncated, unknown columns, garbage."""

from __future__ import annotations

import pytest
from hami_plugins_hygon.hy_smi import HySmi
from hami_plugins_hygon.models import model_name

from hami_hal.vendor_tool import ToolError
from hami_plugins_hygon import hy_smi_parse as p


class _Replay:
    source = "real"

    def __init__(self, answers):
        self.answers = answers

    def run(self, args):
        return self.answers[" ".join(args)]


def test_info_lines_with_empty_series_and_colons_in_values(recorded):
    kv = p.parse_kv(recorded("hy-smi-info-4xk100.txt"))
    assert kv[0]["Card Series"] == "" and kv[0]["PCI Bus"] == "0000:43:00.0"
    assert kv[2]["Card Series"] == "K100_AI" and kv[3]["(Topology) Numa Node"] == "N/A"


def test_devices_and_models(recorded):
    port = HySmi(_Replay({"--showproductname --showid --showserial --showbus --showmeminfo vram --showtoponuma":
                          recorded("hy-smi-info-4xk100.txt")}))
    devs = port.devices()
    assert [model_name(d.series, d.device_id) for d in devs] == ["K100", "K100", "K100_AI", None]
    assert devs[0].memory_total_bytes == 68702699520 and devs[3].memory_used_bytes is None
    assert devs[3].numa_node is None and devs[2].numa_node == 1


def test_summary_table(recorded):
    rows = p.parse_table(recorded("hy-smi-summary.txt"))
    assert sorted(rows) == [0, 1, 2, 3]
    assert (rows[1].temp_c, rows[1].power_w, rows[1].busy_percent, rows[1].vram_percent) == (47.0, 121.0, 12.0, 3.0)
    assert rows[2].power_w is None


def test_summary_table_truncated_and_unknown_column(recorded):
    text = recorded("hy-smi-summary.txt")
    with pytest.raises(ToolError, match="truncated output: no 'End of SMI Log'"):
        p.parse_table(text.split("=== End")[0].rsplit("\n", 2)[0])
    wider = text.replace("DCU%      Mode", "DCU%      Mode     ECC").replace("Normal", "Normal   0")
    assert p.parse_table(wider)[0].extra == {"Perf": "auto", "PwrCap": "350.0W", "ECC": "0"}


@pytest.mark.parametrize("text, match", [
    ("", "no 'DCU Temp"),
    ("Segmentation fault\n", "no 'DCU Temp"),
    ("DCU Temp AvgPwr\n0 hot 1W\n=== End of SMI Log ===\n", "Temp 'hot' is not a number"),
    ("DCU Temp AvgPwr Mode\n0 40C\n=== End of SMI Log ===\n", "2 values for 4 columns"),
])
def test_summary_garbage_is_one_line(text, match):
    with pytest.raises(ToolError, match=match) as err:
        p.parse_table(text)
    assert "\n" not in str(err.value)


def test_kv_garbage():
    with pytest.raises(ToolError, match="no 'DCU\\[i\\]"):
        p.parse_kv("error: no devices\n")
    with pytest.raises(ToolError, match="expected 'DCU\\[0\\] : <key>: <value>'"):
        p.parse_kv("DCU[0] : broken line without separator\n")


def test_topology_matrix(recorded):
    assert p.parse_topo_type(recorded("hy-smi-topotype.txt")) == {
        (0, 1): "XGMI", (0, 2): "PCIE", (0, 3): "PCIE", (1, 2): "PCIE", (1, 3): "PCIE", (2, 3): "XGMI"}
    with pytest.raises(ToolError, match="3 entries for 4 DCUs"):
        p.parse_topo_type(recorded("hy-smi-topotype.txt").replace("DCU3   PCIE         PCIE         XGMI         0",
                                                                    "DCU3   PCIE         PCIE         XGMI"))


def test_virtual_info(recorded):
    vs = p.parse_virtual_info(recorded("hy-smi-virtual-info.txt"))
    assert [(v.index, v.actual_device, v.compute_units, v.memory_bytes) for v in vs] == [
        (0, 0, 9, 2097152000), (1, 2, 60, 17179869184)]
    assert p.parse_virtual_info("") == []
    with pytest.raises(ToolError, match="truncated or unreadable block for device 1"):
        p.parse_virtual_info(recorded("hy-smi-virtual-info.txt").rsplit("    Global", 1)[0])


def test_absurd_memory_is_refused(recorded):
    text = recorded("hy-smi-info-4xk100.txt").replace("68702699520", "9" * 30, 1)
    port = HySmi(_Replay({"--showproductname --showid --showserial --showbus --showmeminfo vram --showtoponuma": text}))
    with pytest.raises(ToolError, match="out of range"):
        port.devices()
