"""YAML loading with bounds: file size, nesting depth, and the size a document grows to through aliases.

``yaml.safe_load`` refuses ``!!python`` tags but not an alias bomb (nine anchors of ten aliases each
is a 200-byte file that expands to 10^9 nodes for whoever walks it) nor 50,000 nested ``[``, which
overflows the composer's recursion. Every YAML file or text a user hands to hami-hal (pod manifests,
``HAMI_HAL_CONFIG``, simulated-hardware profiles) goes through :func:`load_all`, so the bounds live in
one place. Errors are :class:`YamlBoundError` (a ``ValueError``) with one line saying which bound.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, SequenceNode

#: Biggest YAML file or text read (bytes). A pod manifest, a profile or a config is a few KiB.
MAX_BYTES = 1 << 20
#: Deepest nesting of collections. A Pod is about 10 deep; 64 leaves room and stays far from recursion limits.
MAX_DEPTH = 64
#: Most nodes a document may hold once every alias is expanded.
MAX_NODES = 100_000
#: Most alias uses in one stream.
MAX_ALIASES = 1_000


class YamlBoundError(ValueError):
    """The text breaks one of the bounds above; the message says which."""


class BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader that counts depth, aliases and the expanded size while composing."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._sizes: dict[int, int] = {}

    def compose_document(self):
        self._sizes = {}
        return super().compose_document()

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlBoundError(f"uses more than {MAX_ALIASES} aliases")
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:  # the anchor is still open: a structure holding itself
                raise YamlBoundError("holds a recursive alias")
            return node  # its size is the anchored node's, already counted where the alias is used
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlBoundError(f"is nested deeper than {MAX_DEPTH} levels")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._sizes.get(id(c), 1) for c in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value)
        if size > MAX_NODES:
            raise YamlBoundError(f"expands to more than {MAX_NODES} nodes (alias bomb?)")
        self._sizes[id(node)] = size
        return node


def _check_size(text: str | bytes) -> None:
    if len(text) > MAX_BYTES:
        raise YamlBoundError(f"is larger than {MAX_BYTES} bytes")


def load_all(text: str) -> list:
    """Every non-empty document of ``text``.

    Raises :class:`yaml.YAMLError` for a syntax error (with marks) and :class:`YamlBoundError` for a
    broken bound or a value Python cannot build (e.g. an integer of 5,000 digits).
    """
    _check_size(text)
    loader = BoundedSafeLoader(text)
    try:
        docs = []
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
        return docs
    except RecursionError:
        raise YamlBoundError(f"is nested deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError:
        raise
    except ValueError as exc:  # int("9" * 5000) and friends, raised while constructing
        if isinstance(exc, YamlBoundError):
            raise
        raise YamlBoundError(f"holds a value that cannot be read ({str(exc).splitlines()[0][:80]})") from None
    finally:
        loader.dispose()


def load(text: str):
    """The single document of ``text`` (None when empty); more than one document is an error."""
    docs = load_all(text)
    if len(docs) > 1:
        raise YamlBoundError(f"holds {len(docs)} documents, expected one")
    return docs[0] if docs else None


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """A file's UTF-8 text, refusing one over ``max_bytes`` before reading it whole.

    Raises OSError, UnicodeDecodeError or YamlBoundError.
    """
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlBoundError(f"is larger than {max_bytes} bytes")
    return data.decode("utf-8")
