"""The real npu-smi path: a stand-in binary that prints a recorded output, hangs, exits non-zero or is
missing. Each failure is one line; a hanging tool is cut off by the time limit."""

from __future__ import annotations

import time

import pytest
from hami_plugins_ascend.npu_smi import NpuSmi, RealRunner

from hami_hal.context import NodeContext
from hami_hal.errors import BackendUnavailable
from hami_hal.vendor_tool import ToolError, run_tool
from hami_plugins_ascend import discovery, ports


def _script(tmp_path, body: str):
    path = tmp_path / "npu-smi"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_hanging_tool_times_out_with_one_line(tmp_path):
    tool = _script(tmp_path, "sleep 30\n")
    start = time.monotonic()
    with pytest.raises(ToolError) as err:
        RealRunner(path=tool, timeout_s=0.5).run(["info"])
    assert time.monotonic() - start < 10
    assert str(err.value) == "npu-smi info: timed out after 0.5 s (tool or driver hung)"


def test_nonzero_exit_reports_last_stderr_line(tmp_path):
    tool = _script(tmp_path, "echo 'dcmi init failed, ret = -8005' >&2\nexit 3\n")
    with pytest.raises(ToolError, match=r"exited with status 3: dcmi init failed, ret = -8005$"):
        RealRunner(path=tool, timeout_s=5).run(["info"])


def test_missing_tool(tmp_path, monkeypatch):
    with pytest.raises(ToolError, match="not found"):
        run_tool([str(tmp_path / "absent")], timeout_s=1)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("hami_plugins_ascend.npu_smi.NPU_SMI_PATHS", (str(tmp_path / "absent"),))
    with pytest.raises(BackendUnavailable, match="^npu-smi not found"):
        RealRunner()


def test_real_discovery_through_a_recorded_output(tmp_path, recorded):
    """The real runner against a stand-in that replays recorded npu-smi text (still labelled real:
    the point is the code path; no figure from it is published)."""
    (tmp_path / "info.txt").write_text(recorded("npu-smi-info-910b4-1.txt"))
    chip_map = "NPU ID Chip ID Chip Logic ID Chip Name\n" + "".join(f"{i} 0 {i} Ascend 910B4-1\n" for i in range(8))
    (tmp_path / "map.txt").write_text(chip_map)
    (tmp_path / "tpl.txt").write_text(recorded("npu-smi-template-info-910b3.txt"))
    tool = _script(tmp_path, f"""case "$*" in
  "info") cat {tmp_path}/info.txt ;;
  "info -m") cat {tmp_path}/map.txt ;;
  *template-info*) cat {tmp_path}/tpl.txt ;;
  *device-share*) echo "Device-share Status : False" ;;
  *) echo "unknown" >&2; exit 1 ;;
esac
""")
    ports.use_real(NpuSmi(RealRunner(path=tool, timeout_s=5)))
    devs = discovery.discover(ports.port_for(NodeContext("real", "n1")), NodeContext("real", "n1"))
    assert [d.model for d in devs] == ["910B4-1"] * 8
    assert devs[0].uuid == "n1-0" and devs[0].attributes["uuid_source"] == "node-logic-id"
    assert devs[0].hami_type == "Ascend910B4-1" and devs[0].memory_mib == 65536
    assert devs[4].healthy is False and "Warning" in devs[4].health_reason
    assert [d.attributes["hccs_group"] for d in devs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert devs[0].provenance.source == "real"


def test_real_discovery_of_a_broken_tool_skips_the_plugin(tmp_path):
    tool = _script(tmp_path, "echo 'Segmentation fault'\n")
    ports.use_real(NpuSmi(RealRunner(path=tool, timeout_s=5)))
    with pytest.raises(BackendUnavailable, match=r"^npu-smi info: no chip table header"):
        discovery.discover(ports.port_for(NodeContext("real", "n1")), NodeContext("real", "n1"))


def test_bad_timeout_config_is_one_line():
    with pytest.raises(Exception, match="npu_smi_timeout_s"):
        ports.port_for(NodeContext("real", "n1", config={"ascend": {"npu_smi_timeout_s": -1}}))



def test_real_port_reads_the_table_once_for_all_chips(recorded):
    """Health of eight chips costs one `npu-smi info` (+ `-m`) on a real node, not eight."""
    from hami_hal.models import Device, Provenance
    from hami_plugins_ascend import health

    calls = []

    class Replay:
        source = "real"

        def run(self, args):
            calls.append(args)
            if args == ["info"]:
                return recorded("npu-smi-info-910b4-1.txt")
            return "NPU ID Chip ID Chip Logic ID Chip Name\n" + "".join(f"{i} 0 {i} Ascend\n" for i in range(8))

    port = NpuSmi(Replay())
    devs = [Device(vendor="ascend", index=i, uuid=f"n1-{i}", model="910B4-1", hami_type="Ascend910B4-1",
                   memory_mib=65536, attributes={"logic_id": i}, provenance=Provenance(source="real"))
            for i in range(8)]
    assert [health.check(port, d).healthy for d in devs] == [True, True, True, True, False, True, True, True]
    assert calls.count(["info"]) == 1


def test_soft_mode_needs_an_arm_host(tmp_path, recorded, monkeypatch):
    (tmp_path / "info.txt").write_text(recorded("npu-smi-info-310p3.txt"))
    tool = _script(tmp_path, f"""case "$*" in
  "info") cat {tmp_path}/info.txt ;;
  "info -m") printf 'NPU ID Chip ID Chip Logic ID Chip Name\\n4 0 0 Ascend 310P3\\n' ;;
  *device-share*) echo "Device-share Status : True" ;;
  *) echo "unknown" >&2; exit 1 ;;
esac
""")
    ports.use_real(NpuSmi(RealRunner(path=tool, timeout_s=5)))
    ctx = NodeContext("real", "n1")
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    (dev,) = discovery.discover(ports.port_for(ctx), ctx)
    assert dev.attributes["soft_mode"] is False and "ARM hosts only" in dev.attributes["unknown"]["soft_mode"]
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    (dev,) = discovery.discover(ports.port_for(ctx), ctx)
    assert dev.attributes["soft_mode"] is True and dev.mode == "hami-core"
