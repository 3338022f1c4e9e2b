"""Which npu-smi answers for a node context: the real tool, or the fake of a simulated node (one per node,
kept by :class:`hami_hal.tool_ports.ToolPorts`, so vNPUs created through it live as long as the node).
"""

from __future__ import annotations

from hami_hal.tool_ports import ToolPorts, timeout_from_config

from .fake_npu_smi import FakeNpuSmi
from .npu_smi import DEFAULT_TIMEOUT_S, NpuSmi, RealRunner

_ports: ToolPorts[NpuSmi, FakeNpuSmi] = ToolPorts(
    make_real=lambda ctx: NpuSmi(RealRunner(timeout_s=timeout_from_config(ctx.config, "ascend", "npu_smi_timeout_s",
                                                                          DEFAULT_TIMEOUT_S))),
    make_fake=FakeNpuSmi, wrap_fake=NpuSmi, label="Ascend")
_fakes = _ports.fakes
port_for = _ports.port_for
fake_for = _ports.fake_for
use_real = _ports.use_real
reset = _ports.reset
