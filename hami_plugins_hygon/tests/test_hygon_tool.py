"""The real hy-smi path through stand-in binaries: hanging, failing, missing; discovery skips with one line."""

from __future__ import annotations

import time

import pytest
from hami_plugins_hygon.hy_smi import HySmi, RealRunner

from hami_hal.context import NodeContext
from hami_hal.errors import BackendUnavailable
from hami_plugins_hygon import discovery, ports


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "hy-smi"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def _discover():
    ctx = NodeContext("real", "n1")
    return discovery.discover(ports.port_for(ctx), ctx)


def test_hanging_hy_smi_skips_the_plugin_with_one_line(tmp_path):
    ports.use_real(HySmi(RealRunner(path=_script(tmp_path, "sleep 30\n"), timeout_s=0.5)))
    start = time.monotonic()
    with pytest.raises(BackendUnavailable) as err:
        _discover()
    assert time.monotonic() - start < 10
    assert str(err.value).startswith("hy-smi --showproductname") and "timed out after 0.5 s" in str(err.value)


def test_failing_hy_smi(tmp_path):
    ports.use_real(HySmi(RealRunner(path=_script(tmp_path, "echo 'rsmi_init failed' >&2; exit 2\n"), timeout_s=5)))
    with pytest.raises(BackendUnavailable, match="exited with status 2: rsmi_init failed$"):
        _discover()


def test_missing_hy_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("hami_plugins_hygon.hy_smi.HY_SMI_PATHS", (str(tmp_path / "absent"),))
    with pytest.raises(BackendUnavailable, match="^hy-smi not found"):
        RealRunner()


def test_real_discovery_from_recorded_outputs(tmp_path, recorded):
    (tmp_path / "info.txt").write_text(recorded("hy-smi-info-4xk100.txt"))
    (tmp_path / "table.txt").write_text(recorded("hy-smi-summary.txt"))
    tool = _script(tmp_path, f"""case "$*" in
  "") cat {tmp_path}/table.txt ;;
  --showproductname*) cat {tmp_path}/info.txt ;;
  *) echo "unknown option" >&2; exit 1 ;;
esac
""")
    ports.use_real(HySmi(RealRunner(path=tool, timeout_s=5)))
    devs = _discover()
    assert [(d.model, d.compute_units) for d in devs] == [("K100", 120), ("K100", 120), ("K100_AI", 120),
                                                          ("unknown", None)]
    assert devs[0].uuid == "HCU-TG0A3U0901234" and devs[0].attributes["legacy_id"] == "DCU-TG0A3U0901234"
    assert devs[0].memory_mib == 65520 and devs[0].hami_type == "HCU-K100"
    assert devs[3].attributes["vhcu_capable"] is False and "0x9999" in devs[3].attributes["unknown"]["model"]
