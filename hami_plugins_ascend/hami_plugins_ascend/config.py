"""The plugin's per-node settings (HAMi names accepted), validated with one line per bad value.

Keys, under an optional ``ascend`` section: ``hami_vnpu_core`` / ``hamiVnpuCore`` (soft slicing on this
node; unset = on when every chip reports device-share mode), ``v_device_count`` / ``vDeviceCount``
(vNPUs per card, overriding HAMi's memoryAllocatable / smallest template), ``runtime_class`` /
``runtimeClassName`` (RuntimeClass for hard-sliced pods, HAMi chart default unset, usually ``ascend``),
``npu_smi_timeout_s``.

HAMi's ``vnpus`` section (the node agent hands it over under that name, ``VendorInfo.hami_sections``) gives the
chip table (:mod:`.vnpus_config`: the user's entries over the built-in ones) and ``vnpus.hamiVnpuCore``, the
cluster-wide default for soft slicing where the node has no answer of its own (HAMi: the node's
``hami-vnpu-core`` annotation overrides it): this node's ``hamiVnpuCore`` > the chips' device-share answer >
``vnpus.hamiVnpuCore`` > template mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hami_hal.errors import InputError
from hami_hal.tool_ports import timeout_from_config

from .chips import ChipConfig, chips
from .npu_smi import DEFAULT_TIMEOUT_S
from .vnpus_config import parse_vnpus

_ALIASES = {
    "hami_vnpu_core": ("hamiVnpuCore",),
    "v_device_count": ("vDeviceCount", "vdevicecount"),
    "runtime_class": ("runtimeClassName",),
}


@dataclass(frozen=True)
class AscendConfig:
    hami_vnpu_core: bool | None = None
    v_device_count: int | None = None
    runtime_class: str | None = None
    #: The chip table: HAMi's ``vnpus`` entries over the built-in one.
    chips: tuple[ChipConfig, ...] = field(default_factory=chips)
    #: ``vnpus.hamiVnpuCore``: soft slicing where npu-smi cannot say (None = not written: template mode).
    default_vnpu_core: bool | None = None


def _get(raw: dict, key: str):
    for name in (key, *_ALIASES[key]):
        if name in raw:
            return name, raw[name]
    return None, None


def parse_config(config: dict | None) -> AscendConfig:
    raw = dict(config or {})
    vnpus = parse_vnpus(raw.pop("vnpus", None))
    if isinstance(raw.get("ascend"), dict):
        raw = {**raw, **raw["ascend"]}
    values: dict = {}
    name, v = _get(raw, "hami_vnpu_core")
    if name:
        if isinstance(v, str) and v.lower() in ("true", "false"):
            v = v.lower() == "true"
        if not isinstance(v, bool):
            raise InputError(name, v, 'must be true or false')
        values["hami_vnpu_core"] = v
    name, v = _get(raw, "v_device_count")
    if name:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 128:
            raise InputError(name, v, "must be an integer between 1 and 128")
        values["v_device_count"] = v
    name, v = _get(raw, "runtime_class")
    if name:
        if not isinstance(v, str) or not v or len(v) > 253 or not all(c.isalnum() or c in "-." for c in v):
            raise InputError(name, v, "must be a RuntimeClass name (DNS subdomain)")
        values["runtime_class"] = v
    return AscendConfig(**values, chips=vnpus.chips, default_vnpu_core=vnpus.hami_vnpu_core)


def check_config(config: dict | None) -> list[str]:
    """``hami_hal_check_config``: every setting this plugin reads, checked before the node agent starts (the
    npu-smi time-out is otherwise read only on first real use)."""
    parse_config(config)
    timeout_from_config(dict(config or {}), "ascend", "npu_smi_timeout_s", DEFAULT_TIMEOUT_S)
    return list(parse_vnpus((config or {}).get("vnpus")).notes)
