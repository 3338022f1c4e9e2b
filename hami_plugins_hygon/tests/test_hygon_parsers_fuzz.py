"""Any text a broken or hostile hy-smi prints gives records or one ToolError line, never another exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hami_hal.vendor_tool import ToolError
from hami_plugins_hygon import hy_smi_parse as p

FIXTURES = Path(__file__).with_name("fixtures")
PARSERS = [p.parse_kv, p.parse_table, p.parse_topo_type, p.parse_virtual_info]
RECORDED = ["\n".join(ln for ln in f.read_text().splitlines() if not ln.startswith("# "))
            for f in sorted(FIXTURES.glob("*.txt"))]


def _check(text: str) -> None:
    for parse in PARSERS:
        try:
            parse(text)
        except ToolError as err:
            assert "\n" not in str(err)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.text(alphabet=st.sampled_from(list("DCU[]: 0123456789ABCTempXGMIPCIEnd of SMI Log%WCDevice:bytes\n =")), max_size=400))
def test_random_text(text):
    _check(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(RECORDED), st.data())
def test_mutated_recordings(text, data):
    lines = text.splitlines()
    drop = data.draw(st.sets(st.integers(0, max(0, len(lines) - 1)), max_size=3))
    lines = [ln for i, ln in enumerate(lines) if i not in drop]
    if lines:
        i = data.draw(st.integers(0, len(lines) - 1))
        j = data.draw(st.integers(0, len(lines[i])))
        lines[i] = lines[i][:j] + data.draw(st.text(max_size=5)) + lines[i][j + 1:]
    _check("\n".join(lines))
