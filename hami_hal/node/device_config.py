"""HAMi's device-plugin capacity knobs for ``hami node``: deviceSplitCount, deviceMemoryScaling,
deviceCoreScaling, from flags and/or a config file, checked here once for every vendor.

The file is HAMi's device-plugin node config (ConfigMap ``hami-device-plugin``, ``config.json``) or a plain
mapping, YAML or JSON::

    deviceSplitCount: 10            # defaults for every node
    nodeconfig:                     # HAMi's per-node overrides (lower-case keys, as HAMi writes them)
      - {name: gpu-node-1, devicesplitcount: 4, devicememoryscaling: 1.0, devicecorescaling: 1.0}

Flags override the file; the node's ``nodeconfig`` entry overrides the file's top level. The result is the
``config`` every plugin's discovery gets (``NodeContext.config``), under HAMi's camelCase names, so the
partition model each plugin reports (the register annotation's ``count``/``devmem``/``devcore``) and the
kubelet's replica IDs (``ListAndWatch``: split count N → N IDs per device) follow it.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .. import bounded_yaml
from ..errors import InputError

#: HAMi name -> (lower-case node-config spelling, type, lowest, highest). The split count is bounded by what
#: a kubelet handles per device (ListAndWatch sends every replica ID); the scalings by what is plausible:
#: memory above 1 is HAMi's oversubscription, compute above 1 lets shares exceed 100 % of the device.
KNOBS: dict[str, tuple[str, type, float, float]] = {
    "deviceSplitCount": ("devicesplitcount", int, 1, 1024),
    "deviceMemoryScaling": ("devicememoryscaling", float, 0.01, 100.0),
    "deviceCoreScaling": ("devicecorescaling", float, 0.01, 100.0),
}
#: Every spelling of a knob the core reads (and strips from a vendor's section, see plugin_settings.py).
_SPELLINGS: dict[str, str] = {
    spelling: name
    for name, (lower, *_rest) in KNOBS.items()
    for spelling in (name, lower, "".join("_" + c.lower() if c.isupper() else c for c in name))
}
#: A config file larger than this is refused before it is parsed.
MAX_FILE_BYTES = 1 << 20


def check_knob(field: str, name: str, value: object) -> int | float:
    """``value`` for the knob ``name`` within its bounds; InputError naming ``field`` and the value."""
    _, kind, lo, hi = KNOBS[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise InputError(field, value, f"must be {'an integer' if kind is int else 'a number'} {lo:g}..{hi:g}")
    if not lo <= value <= hi:
        raise InputError(field, value, f"must be between {lo:g} and {hi:g}")
    return kind(value)


def knob_name(key: object) -> str | None:
    """The HAMi name of a knob spelled ``key`` (camelCase, HAMi's lower-case node-config key, snake_case)."""
    return _SPELLINGS.get(key) if isinstance(key, str) else None


def _knobs(raw: dict, where: str) -> dict[str, int | float]:
    out: dict[str, int | float] = {}
    for key, value in raw.items():
        name = knob_name(key)
        if name is not None:
            out[name] = check_knob(f"{where}{key}", name, value)
    return out


def read_file(path: str | Path) -> tuple[str, dict]:
    """(the file's name for messages, its top-level mapping); InputError naming the file otherwise."""
    p = Path(path)
    field = f"--device-config {p}"
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(field, size, f"bytes: larger than {MAX_FILE_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(field, str(p), f"cannot be read ({getattr(err, 'strerror', None) or err})") from None
    try:
        raw = bounded_yaml.load(text) if text.strip() else {}
    except bounded_yaml.YamlBoundError as err:
        raise InputError(field, "", f"is refused: the file {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(field, "", f"is not valid YAML/JSON{at}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InputError(field, type(raw).__name__, "must hold a mapping")
    return p.name, raw


def node_entry(raw: dict, name: str, node: str) -> tuple[int, dict] | None:
    """(index, entry) of ``node`` in HAMi's ``nodeconfig`` list, None when it has none."""
    entries = raw.get("nodeconfig", [])
    if entries is None:
        return None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"{name}: nodeconfig", entries if not isinstance(entries, list) else "...",
                         "must be a list of {name: <node>, ...} mappings")
    for i, e in enumerate(entries):
        if e.get("name") == node:
            return i, e
    return None


def entry_label(name: str, index: int, node: str) -> str:
    """How messages name a node's entry: ``config.json: nodeconfig[0] (gpu-node-1) ``."""
    return f"{name}: nodeconfig[{index}] ({node}) "


def load_file(path: str | Path, node: str) -> dict[str, int | float]:
    """The knobs a HAMi device-plugin config file sets for ``node`` (its ``nodeconfig`` entry over the top)."""
    name, raw = read_file(path)
    return file_knobs(name, raw, node)


def file_knobs(name: str, raw: dict, node: str) -> dict[str, int | float]:
    """The top level's knobs, then the node's ``nodeconfig`` entry's."""
    out = _knobs(raw, f"{name}: ")
    found = node_entry(raw, name, node)
    if found is not None:
        out.update(_knobs(found[1], entry_label(name, found[0], node)))
    return out


def flag_name(name: str) -> str:
    """The command-line flag of the knob ``name`` (``deviceSplitCount`` -> ``--device-split-count``)."""
    return "--" + "".join("-" + c.lower() if c.isupper() else c for c in name)


def device_config(path: str | Path | None, node: str, flags: dict[str, object | None]) -> dict[str, int | float]:
    """The knobs for ``node``: the file's, then the flags that were given (``None`` = not given).

    ``flags`` maps a HAMi name to the flag's value; a flag's name in errors is its command-line spelling."""
    out = load_file(path, node) if path else {}
    for name, value in flags.items():
        if value is not None:
            out[name] = check_knob(flag_name(name), name, value)
    return out
