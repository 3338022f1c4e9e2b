"""Which hy-smi answers for a node context: the real tool, or the fake of a simulated node (one per node,
kept by :class:`hami_hal.tool_ports.ToolPorts`, so vDCUs created through it live as long as the node).
"""

from __future__ import annotations

from hami_hal.tool_ports import ToolPorts, timeout_from_config

from .fake_hy_smi import FakeHySmi
from .hy_smi import DEFAULT_TIMEOUT_S, HySmi, RealRunner

_ports: ToolPorts[HySmi, FakeHySmi] = ToolPorts(
    make_real=lambda ctx: HySmi(RealRunner(timeout_s=timeout_from_config(ctx.config, "hygon", "hy_smi_timeout_s",
                                                                          DEFAULT_TIMEOUT_S))),
    make_fake=FakeHySmi, wrap_fake=HySmi, label="Hygon")
_fakes = _ports.fakes
port_for = _ports.port_for
fake_for = _ports.fake_for
use_real = _ports.use_real
reset = _ports.reset
