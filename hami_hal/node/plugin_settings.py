"""Plugin settings for ``hami node``: one section per vendor in the node agent's config file, handed to
that vendor's plugin only, checked by the plugin before anything starts.

The file (``--device-config``) is HAMi's layout: HAMi's capacity knobs at the top, HAMi's per-node list
``nodeconfig``, and one section per vendor, as HAMi's ``device-config.yaml`` has::

    deviceSplitCount: 10                       # every vendor (device_config.py checks the knobs)
    acme:                                      # the plugin whose vendor key is "acme" gets this
      stateDir: /run/acme
      deviceSplitCount: 4                      # a knob in a section: this vendor's (as in HAMi's sections)
    nodeconfig:
      - name: gpu-node-1
        devicesplitcount: 2                    # this node, every vendor
        acme: {stateDir: ""}                   # this node, the acme section's keys over the file's

HAMi writes its device plugin's per-node keys flat in the entry (``operatingmode: hami-core``,
``filterdevices: {index: [1]}``); a plugin names the entry keys it reads in ``VendorInfo.node_entry_keys``
and the core moves them into that plugin's section (over the file's section, under the entry's own section).
HAMi sections named otherwise (a per-chip section, a mapping or a list) reach the plugin
that declares them in ``VendorInfo.hami_sections``, under their own name and as written.

The core knows no vendor: a section is any top-level mapping, named by a vendor key a plugin declares
(``hami_hal_vendor``). The plugin of vendor V gets ``context.config == {<knobs>, V: <its section>}`` and
nothing of other vendors' sections; it checks them with ``hami_hal_check_config``.

Precedence for a knob: the file's top level < the vendor's section < the node's ``nodeconfig`` entry < the
flags. The core takes the knobs out of a section and puts the ones resolved for that vendor at the top of its
``context.config``, where every plugin reads them, so a plugin sees the same numbers as the core.

A section naming no installed plugin is ignored with one log line: one ConfigMap serves every node of a
cluster, nodes carry different plugins, and HAMi's device-config.yaml holds a section for every vendor HAMi
knows, so refusing one would stop agents that have nothing to do with it. A top-level list (HAMi has
list-valued scheduler sections) is ignored the same way, unless it names an installed plugin. A top-level
scalar that is no knob is refused: it would be a plugin setting written outside its section, silently lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HalError, InputError
from .device_config import check_knob, entry_label, file_knobs, flag_name, knob_name, node_entry, read_file

#: What a section's name may look like (vendor keys are lower-case words; HAMi's section names too).
SECTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
#: Keys of HAMi's ``nodeconfig`` entry that are neither the name nor a knob nor a section, at most this many noted.
_MAX_NOTES = 20


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class NodeSettings:
    """What the node agent hands the plugins: the knobs for every vendor and each vendor's own section."""

    #: HAMi's knobs for a vendor without a section of its own (file top < node entry < flags).
    knobs: dict[str, int | float] = field(default_factory=dict)
    #: vendor key -> its section as the plugin gets it (the node entry's keys over the file's, knobs taken out).
    sections: dict[str, dict] = field(default_factory=dict)
    #: vendor key -> the knobs resolved for it, for a vendor whose section sets a knob.
    vendor_knobs: dict[str, dict[str, int | float]] = field(default_factory=dict)
    #: vendor key -> section key -> the field it was written as (for the one-line error).
    origins: dict[str, dict[str, str]] = field(default_factory=dict)
    #: knob name -> where its value came from (a flag, or the file's field).
    knob_origins: dict[str, str] = field(default_factory=dict)
    #: top-level lists (HAMi's list-valued scheduler sections) -> their field, for the check below.
    lists: dict[str, str] = field(default_factory=dict)
    #: vendor key -> {HAMi section name -> the section as written} (``VendorInfo.hami_sections``).
    hami_sections: dict[str, dict[str, object]] = field(default_factory=dict)
    #: HAMi section name -> the file's name for it (``device-config.yaml: <name>``).
    hami_origins: dict[str, str] = field(default_factory=dict)
    #: One-line notes on what the file holds that the agent does not use (logged at start).
    notes: list[str] = field(default_factory=list)

    def config_for(self, vendor: str) -> dict:
        """``context.config`` of ``vendor``'s plugin: the knobs and, when the file has one, its section."""
        out: dict = dict(self.vendor_knobs.get(vendor, self.knobs))
        if vendor in self.sections:
            out[vendor] = dict(self.sections[vendor])
        for name, value in self.hami_sections.get(vendor, {}).items():
            out[name] = value
        return out

    def where(self, vendor: str, key: str) -> str:
        """The field a plugin's complaint about ``key`` names (``config.json: acme.stateDir``)."""
        bare = key[len(vendor) + 1:] if key.startswith(f"{vendor}.") else key
        head = re.split(r"[.\[]", key, maxsplit=1)[0]
        if head in self.hami_sections.get(vendor, {}):  # a HAMi section: "<name>.configs[0].<key>"
            return self.hami_origins[head] + key[len(head):]
        origins = self.origins.get(vendor, {})
        if bare in origins:
            return origins[bare]
        base = re.split(r"[.\[]", bare, maxsplit=1)[0]  # a part of a setting: "migProfileAllowlist[0].profiles"
        if base != bare and base in origins:
            return origins[base] + bare[len(base):]
        name = knob_name(bare)
        if name is not None and name in self.knob_origins:
            return self.knob_origins[name]
        return f"plugin {vendor} setting {key}"

    def drop_sections_except(self, vendors: set[str]) -> None:
        """Forget the sections no installed plugin owns, with one note each; an installed plugin's section
        written as a list is an error (it would otherwise be dropped without a word)."""
        for name, fld in sorted(self.lists.items()):
            if name in vendors:
                raise InputError(fld, "[...]", f"must be a mapping of the {name} plugin's settings, not a list")
            self.notes.append(f"--device-config {fld}: a list (a HAMi scheduler section), not plugin settings: "
                              "ignored")
        for name in sorted(set(self.sections) - vendors):
            del self.sections[name]
            self.origins.pop(name, None)
            self.vendor_knobs.pop(name, None)
            self.notes.append(f"--device-config: section {name!r} names no installed plugin "
                              f"(installed: {', '.join(sorted(vendors)) or 'none'}): ignored")


def _section(where: str, key: object, value: dict) -> str:
    if not isinstance(key, str) or not SECTION_NAME.fullmatch(key):
        raise InputError(f"{where}{_short(key)}", "...", "is not a section name (a plugin's vendor key)")
    if len(value) > 256:
        raise InputError(f"{where}{key}", f"{len(value)} keys", "is too large a section (at most 256 keys)")
    return key


def node_settings(path: str | Path | None, node: str, flags: dict[str, object | None],
                  entry_keys: dict[str, dict[str, str]] | None = None,
                  hami_sections: dict[str, list[str]] | None = None) -> NodeSettings:
    """The knobs and the per-vendor sections for ``node`` from the file at ``path`` (if any) and the flags
    (``None`` = not given). Every knob is checked here; sections are the plugins' to check.

    ``entry_keys``: vendor -> {HAMi ``nodeconfig`` entry key -> key of its section} (``VendorInfo.node_entry_keys``
    of the installed plugins): such a key written flat in the node's entry, as HAMi writes it, goes into that
    vendor's section over the file's value.

    ``hami_sections``: vendor -> the HAMi section names its plugin reads (``VendorInfo.hami_sections``): such a
    top-level section goes to that vendor's ``context.config`` under its own name, a mapping or a list."""
    out = NodeSettings()
    given = {name: check_knob(flag_name(name), name, v) for name, v in flags.items() if v is not None}
    node_knobs: dict[str, int | float] = {}
    if path:
        fname, raw = read_file(path)
        out.knobs = file_knobs(fname, raw, node)
        _hami_sections(out, fname, raw, hami_sections or {})
        _top_level(out, fname, raw)
        found = node_entry(raw, fname, node)
        if found is not None:
            node_knobs = _node_entry(out, entry_label(fname, found[0], node), found[1], entry_keys or {})
    for name, value in given.items():
        out.knobs[name] = value
        out.knob_origins[name] = flag_name(name)
    for vendor, section in out.sections.items():
        own: dict[str, int | float] = {}
        for key in [k for k in section if knob_name(k) is not None]:
            name = knob_name(key)
            fld = out.origins[vendor].pop(key)
            own[name] = check_knob(fld, name, section.pop(key))
            if name not in node_knobs and name not in given:
                out.origins[vendor][name] = fld
        if own:  # this vendor's knobs: the file's top < its section < the node's entry < the flags
            out.vendor_knobs[vendor] = {**out.knobs, **own, **node_knobs, **given}
    return out


def _hami_sections(out: NodeSettings, fname: str, raw: dict, names: dict[str, list[str]]) -> None:
    """Take the HAMi sections the installed plugins declare out of ``raw`` (they are not vendor sections)."""
    for vendor, sections in names.items():
        for name in sections:
            if name in raw and knob_name(name) is None and name not in ("nodeconfig", vendor):
                value = raw.pop(name)
                if not isinstance(value, (dict, list)):
                    raise InputError(f"{fname}: {name}", _short(value), f"must be HAMi's {name} section (a mapping "
                                     "or a list)")
                out.hami_sections.setdefault(vendor, {})[name] = value
                out.hami_origins[name] = f"{fname}: {name}"


def _top_level(out: NodeSettings, fname: str, raw: dict) -> None:
    for key, value in raw.items():
        name = knob_name(key)
        if name is not None:
            out.knob_origins[name] = f"{fname}: {key}"
        elif key == "nodeconfig":
            continue
        elif isinstance(value, dict):
            sec = _section(f"{fname}: ", key, value)
            out.sections[sec] = dict(value)
            out.origins[sec] = {k: f"{fname}: {sec}.{k}" for k in value}
        elif isinstance(value, list) and isinstance(key, str):
            out.lists[key] = f"{fname}: {key if SECTION_NAME.fullmatch(key) else _short(key)}"
        else:
            raise InputError(f"{fname}: {_short(key)}", value,
                             "is not a setting of the node agent's config: the top level holds deviceSplitCount, "
                             "deviceMemoryScaling, deviceCoreScaling, nodeconfig and one section per plugin "
                             "vendor (<vendor>: {<setting>: <value>, ...})")


def _node_entry(out: NodeSettings, at: str, entry: dict, entry_keys: dict[str, dict[str, str]]) -> dict[str, int | float]:
    """Merge the node's ``nodeconfig`` entry: the HAMi keys a plugin reads (``entry_keys``) into its section, then
    the entry's sections over the file's; returns the knobs it sets."""
    knobs: dict[str, int | float] = {}
    ignored = []
    routes: dict[str, list[tuple[str, str]]] = {}
    for vendor, keys in entry_keys.items():
        for key, section_key in keys.items():
            routes.setdefault(key, []).append((vendor, section_key))
    routed = [k for k in entry if isinstance(k, str) and k in routes and k not in entry_keys and knob_name(k) is None]
    for key in routed:  # first, so the entry's own sections (hami-hal's form) are merged over them
        for vendor, section_key in routes[key]:
            out.sections.setdefault(vendor, {})[section_key] = entry[key]
            out.origins.setdefault(vendor, {})[section_key] = f"{at}{key}"
    for key, value in entry.items():
        name = knob_name(key)
        if key == "name" or key in routed:
            continue
        if name is not None:
            knobs[name] = out.knobs[name]  # file_knobs checked it and put the entry's value there
            out.knob_origins[name] = f"{at}{key}"
        elif isinstance(value, dict):
            sec = _section(at, key, value)
            out.sections[sec] = {**out.sections.get(sec, {}), **value}
            out.origins.setdefault(sec, {}).update({k: f"{at}{sec}.{k}" for k in value})
        else:
            ignored.append(_short(key))
    if ignored:
        read = sorted({k for keys in entry_keys.values() for k in keys})
        out.notes.append(f"--device-config {at.rstrip()}: {', '.join(ignored[:_MAX_NOTES])} ignored (the agent reads "
                         "the knobs, vendor sections (<vendor>: {<setting>: <value>})"
                         + (f" and the installed plugins' HAMi keys {', '.join(read)}" if read else "") + " there)")
    return knobs


def check_plugin_config(hal, settings: NodeSettings, vendor: str) -> list[str]:
    """``vendor``'s plugin's verdict on its config (``hami_hal_check_config``): its notes; a bad value is an
    InputError naming where it was written."""
    try:
        return hal.check_config(vendor, settings.config_for(vendor))
    except InputError as err:
        raise InputError(settings.where(vendor, err.field), err.value, err.reason) from None
    except HalError:
        raise
    except Exception as err:  # noqa: BLE001 - a plugin's bug is still one line, and still stops the agent
        text = " ".join(str(err).split())[:200]
        raise HalError(f"plugin {vendor}: its settings check failed: {err.__class__.__name__}: {text}") from None


def summary(settings: NodeSettings, limit: int = 500) -> str:
    """One log line naming the keys of each section handed over (keys shown safely, the line bounded)."""
    def safe(key: object) -> str:
        return key if isinstance(key, str) and SECTION_NAME.fullmatch(key) else _short(key)

    text = "; ".join(f"{vendor}: {', '.join(sorted(safe(k) for k in section))}"
                     for vendor, section in sorted(settings.sections.items()))
    return text if len(text) <= limit else text[:limit - 3] + "..."
