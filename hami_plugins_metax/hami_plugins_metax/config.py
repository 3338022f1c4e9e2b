"""The plugin's per-node settings: ``sgpu_slots`` / ``sgpuSlots`` (sGPUs per card on a real node, the GPU
operator's ``totalDevCount``; default 16), at the top of the config or under a ``metax`` section (where the
node agent hands over the ``metax`` section of its config file). One line per bad value."""

from __future__ import annotations

from hami_hal.errors import InputError

#: Most sGPUs per card a setting may ask for (each is a kubelet ID; the core bounds its split count the same).
MAX_SLOTS = 1024
_KEYS = ("sgpu_slots", "sgpuSlots")


def sgpu_slots(config: dict | None) -> int | None:
    """The configured sGPUs per card, None when unset."""
    raw = dict(config or {})
    if "metax" in raw:
        if not isinstance(raw["metax"], dict):
            raise InputError("metax", raw["metax"], "must be a mapping of the MetaX plugin's settings")
        raw = {**raw, **raw["metax"]}
    for key in _KEYS:
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_SLOTS:
                raise InputError(key, v, f"must be an integer between 1 and {MAX_SLOTS}")
            return v
    return None


def check_config(config: dict | None) -> list[str]:
    """``hami_hal_check_config``: the setting checked, and the section's other keys noted as unread."""
    sgpu_slots(config)
    section = (config or {}).get("metax") or {}
    # HAMi's device-config.yaml metax section names the resources for its scheduler: passed over without a note
    unknown = sorted(str(k) for k in section if k not in _KEYS and not str(k).startswith("resource"))
    return [f"metax: {', '.join(unknown[:10])} not read by the MetaX plugin (ignored); it reads sgpuSlots"] \
        if unknown else []
