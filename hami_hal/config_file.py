"""``HAMI_HAL_CONFIG``: the node's plugin allow/deny lists, read with bounds and checked field by field.

The file is YAML::

    plugins:
      allow: [acme, zeta]       # only these load (empty or absent: all)
      deny: [omega]             # never load these

A string where a list is expected (``deny: acme``) is an error naming the field: read as a list it
would be a set of characters, and ``allow: acme`` would then disable every plugin. A file that is
not UTF-8, not a mapping, too big or an alias bomb gives one line, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from . import bounded_yaml
from .errors import HalError

ENV = "HAMI_HAL_CONFIG"
#: Largest config file read (bytes).
MAX_BYTES = 64 * 1024
#: Most names in one list, and the longest name.
MAX_NAMES = 256
MAX_NAME = 128
_PLUGIN_KEYS = {"allow", "deny"}


class ConfigError(HalError):
    """``HAMI_HAL_CONFIG`` is unreadable or malformed; the message names the file and the field."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _names(value: object, field: str, path: str) -> set[str]:
    if value is None:
        return set()
    if not isinstance(value, list):
        raise ConfigError(f"{ENV} {path}: {field}: {_short(value)} must be a list of plugin names "
                          f"(write [{value}] for one)" if isinstance(value, str) else
                          f"{ENV} {path}: {field}: {_short(value)} must be a list of plugin names")
    if len(value) > MAX_NAMES:
        raise ConfigError(f"{ENV} {path}: {field}: {len(value)} names, at most {MAX_NAMES}")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not name or len(name) > MAX_NAME:
            raise ConfigError(f"{ENV} {path}: {field}[{i}]: {_short(name)} must be a plugin name "
                              f"(a non-empty string of at most {MAX_NAME} characters)")
    return set(value)


def load_plugin_lists(path: str | Path) -> tuple[set[str], set[str]]:
    """(allow, deny) from the config file at ``path``; raises :class:`ConfigError`."""
    raw = str(path)
    path = raw.replace("\n", "\\n").replace("\r", "\\r")  # the message stays one line
    try:
        text = bounded_yaml.read_text(Path(raw), MAX_BYTES)
        data = bounded_yaml.load(text)
    except OSError as err:
        raise ConfigError(f"{ENV}: {path!r} cannot be read ({err.strerror or err.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{ENV}: {path!r} is not UTF-8 text") from None
    except bounded_yaml.YamlBoundError as err:
        raise ConfigError(f"{ENV}: {path!r} is refused: the file {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{ENV}: {path!r}{where} is not valid YAML ({getattr(err, 'problem', None) or 'parse error'})") from None
    if data is None:
        return set(), set()
    if not isinstance(data, dict):
        raise ConfigError(f"{ENV} {path}: the file must be a mapping with a 'plugins' key, got a {type(data).__name__}")
    plugins = data.get("plugins")
    if plugins is None:
        return set(), set()
    if not isinstance(plugins, dict):
        raise ConfigError(f"{ENV} {path}: 'plugins' must be a mapping with allow/deny lists, got {_short(plugins)}")
    unknown = sorted(str(k) for k in plugins if k not in _PLUGIN_KEYS)
    if unknown:
        raise ConfigError(f"{ENV} {path}: plugins: unknown key {_short(unknown[0])} (known: allow, deny)")
    return _names(plugins.get("allow"), "plugins.allow", path), _names(plugins.get("deny"), "plugins.deny", path)


def plugin_lists_from_env() -> tuple[set[str], set[str]]:
    """(allow, deny) from the file ``$HAMI_HAL_CONFIG`` names; two empty sets when it is unset."""
    path = os.environ.get(ENV)
    return load_plugin_lists(path) if path else (set(), set())
