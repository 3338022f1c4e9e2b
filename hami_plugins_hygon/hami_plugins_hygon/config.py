"""The plugin's per-node settings, validated with one line per bad value.

Keys, under an optional ``hygon`` section: ``device_split_count`` / ``DEVICE_SPLIT_COUNT`` (vDCUs per card,
default 4 as in HAMi's and Hygon's plugins), ``vdev_mark_dir`` (where a vDCU's pod is recorded,
default ``/etc/vdev/dynamic``), ``hy_smi_timeout_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hami_hal.errors import InputError
from hami_hal.tool_ports import timeout_from_config

from .hy_smi import DEFAULT_TIMEOUT_S

DEFAULT_SPLIT = 4


@dataclass(frozen=True)
class HygonConfig:
    device_split_count: int = DEFAULT_SPLIT
    vdev_mark_dir: str = "/etc/vdev/dynamic"


def parse_config(config: dict | None) -> HygonConfig:
    raw = dict(config or {})
    if isinstance(raw.get("hygon"), dict):
        raw = {**raw, **raw["hygon"]}
    values: dict = {}
    for name in ("device_split_count", "DEVICE_SPLIT_COUNT", "deviceSplitCount"):
        if name in raw:
            v = raw[name]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 64:
                raise InputError(name, v, "must be an integer between 1 and 64")
            values["device_split_count"] = v
    if "vdev_mark_dir" in raw:
        v = raw["vdev_mark_dir"]
        if not isinstance(v, str) or not v.startswith("/") or ".." in v.split("/"):
            raise InputError("vdev_mark_dir", v, "must be an absolute path without '..'")
        values["vdev_mark_dir"] = v
    return HygonConfig(**values)


def check_config(config: dict | None) -> list[str]:
    """``hami_hal_check_config``: every setting this plugin reads, checked before the node agent starts (the
    hy-smi time-out is otherwise read only on first real use)."""
    parse_config(config)
    timeout_from_config(dict(config or {}), "hygon", "hy_smi_timeout_s", DEFAULT_TIMEOUT_S)
    return []
