"""HAMi's ``vnpus`` section of device-config.yaml as this plugin's chip table.

HAMi v2.9+ writes ``vnpus: {hamiVnpuCore: false, configs: [<entry>, ...]}``; before v2.9 ``vnpus`` was the bare
list of entries. Each entry is one :class:`~.chips.ChipConfig` (HAMi's keys). A user's entry replaces the built-in
entry of the same ``chipName`` and an entry for another chip is added, so the built-in table stays the default
and HAMi's own table (every chip listed) gives the same chips. A bad entry is one :class:`InputError` naming
``vnpus.configs[i].<field>`` and the value; nothing is half applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from pydantic import ValidationError

from hami_hal.errors import InputError

from .chips import ChipConfig, chips

#: At most this many entries (HAMi's table has 7; a cluster's own chips add a few).
MAX_ENTRIES = 64
#: The section's keys this plugin reads (HAMi v2.9+ form).
SECTION_KEYS = ("hamiVnpuCore", "configs")


@dataclass(frozen=True)
class VnpusConfig:
    """What the section sets: the chip table and HAMi's cluster-wide soft-slicing default."""

    chips: tuple[ChipConfig, ...]
    #: ``vnpus.hamiVnpuCore``; None = not written.
    hami_vnpu_core: bool | None = None
    #: The section's keys this plugin does not read, one line each.
    notes: tuple[str, ...] = ()


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _entry(prefix: str, raw: object) -> ChipConfig:
    if not isinstance(raw, dict):
        raise InputError(prefix, raw if not isinstance(raw, (list, dict)) else type(raw).__name__,
                         "must be a mapping (chipName, commonWord, memoryAllocatable, ..., templates)")
    try:
        return ChipConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        value = first.get("input")
        if not loc or isinstance(value, dict):
            value = raw.get("chipName", "...") if not loc else "{...}"
        return _raise(prefix + _path(loc), value, first["msg"].removeprefix("Value error, "))


def _raise(field: str, value: object, reason: str):
    text = value if isinstance(value, (bool, int, float)) or value is None else str(value)
    if isinstance(text, str) and len(text) > 80:
        text = text[:77] + "..."
    raise InputError(field, text, reason)


def _merge(entries: list[tuple[str, ChipConfig]]) -> tuple[ChipConfig, ...]:
    builtin = {c.chipName: c for c in chips()}
    builtin_words = {c.commonWord: c.chipName for c in chips()}
    seen_names: dict[str, str] = {}
    seen_words: dict[str, str] = {}
    for prefix, c in entries:
        if c.chipName in seen_names:
            _raise(f"{prefix}.chipName", c.chipName, f"is listed twice (also {seen_names[c.chipName]})")
        if c.commonWord in seen_words:
            _raise(f"{prefix}.commonWord", c.commonWord, f"is listed twice (also {seen_words[c.commonWord]})")
        seen_names[c.chipName], seen_words[c.commonWord] = prefix, prefix
        old = builtin.get(c.chipName)
        if old is not None and old.commonWord != c.commonWord:
            _raise(f"{prefix}.commonWord", c.commonWord,
                   f"differs from chip {c.chipName}'s {old.commonWord}: its resources huawei.com/{old.commonWord}* "
                   "are the ones hami-hal serves for this chip")
        if old is None and c.commonWord in builtin_words:
            _raise(f"{prefix}.commonWord", c.commonWord,
                   f"is chip {builtin_words[c.commonWord]}'s: a new chip needs a commonWord of its own")
    mine = {c.chipName: c for _, c in entries}
    return tuple(mine.pop(c.chipName, c) for c in chips()) + tuple(mine.values())


def _core(value: object) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        _raise("vnpus.hamiVnpuCore", value, "must be true or false")
    return value


def parse_vnpus(section: object) -> VnpusConfig:
    """The chip table and settings ``section`` (HAMi's ``vnpus``, either form) gives; None = the built-in table."""
    if section is None:
        return VnpusConfig(chips())
    try:
        key = json.dumps(section, sort_keys=True, default=str)
    except (TypeError, ValueError):  # keys of mixed types cannot be sorted; a cycle cannot be encoded
        _raise("vnpus", type(section).__name__, "must be HAMi's vnpus section with string keys throughout")
    return _parse_cached(key)


@lru_cache(maxsize=16)
def _parse_cached(key: str) -> VnpusConfig:
    section = json.loads(key)
    notes: list[str] = []
    core = None
    if isinstance(section, list):
        configs, prefix = section, "vnpus"
    elif isinstance(section, dict):
        configs, prefix = section.get("configs", []), "vnpus.configs"
        if "hamiVnpuCore" in section:
            core = _core(section["hamiVnpuCore"])
        other = sorted(str(k) for k in section if k not in SECTION_KEYS)
        if other:
            notes.append(f"vnpus: {', '.join(other[:10])} not read by the Ascend plugin (it reads "
                         f"{', '.join(SECTION_KEYS)})")
        if not isinstance(configs, list):
            _raise("vnpus.configs", type(configs).__name__, "must be a list of chip entries")
    else:
        _raise("vnpus", type(section).__name__, "must be HAMi's vnpus section: {hamiVnpuCore, configs: [...]} "
               "or a list of chip entries")
    if len(configs) > MAX_ENTRIES:
        _raise(prefix, f"{len(configs)} entries", f"is too long (at most {MAX_ENTRIES})")
    entries = [(f"{prefix}[{i}]", _entry(f"{prefix}[{i}]", raw)) for i, raw in enumerate(configs)]
    return VnpusConfig(_merge(entries), core, tuple(notes))
