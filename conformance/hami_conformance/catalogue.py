"""The behaviour catalogue: stable IDs with their requirement level, loaded and validated from YAML.

Behaviours are kept as data apart from the checks that verify them (as Kubernetes conformance does), so
the matrix schema, the docs and the pytest plugin all read one list.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hami_hal import bounded_yaml
from hami_hal.errors import HalError
from hami_hal.models import Requirement

from . import __version__
from .targets import parse_target

BEHAVIOUR_DIR = Path(__file__).parent / "behaviors"
#: The five hook areas plus health; ``oversubscription/*`` lives in the partition file.
AREAS = ("discovery", "partition", "isolation", "topology", "metrics", "health")
_ID_RE = re.compile(r"^[a-z]+(/[a-z0-9]+(-[a-z0-9]+)*)+$")


class CatalogueError(HalError):
    """A behaviour file is malformed: one line naming the file and the field."""


class Behaviour(BaseModel):
    """One behaviour: what must hold, independent of how it is checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    area: str = ""
    requirement: Requirement
    title: str
    description: str = Field(min_length=10)
    #: Only a workload on the device (the plugin's probe) can prove it.
    needs_probe: bool = False
    #: Measurement name → target (``"<= 5"``) the suite judges the probe's raw figures against. The
    #: catalogue owns them: a plugin's own ``Measurement.target`` is replaced, so it cannot loosen one.
    targets: dict[str, str] = Field(default_factory=dict)


class BehaviourFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    area: str
    behaviours: list[Behaviour]


class Catalogue:
    """Ordered behaviours by ID, with a version derived from their content."""

    def __init__(self, behaviours: list[Behaviour], version: str) -> None:
        self.behaviours = behaviours
        self.version = version
        self._by_id = {b.id: b for b in behaviours}

    def __iter__(self):
        return iter(self.behaviours)

    def __len__(self) -> int:
        return len(self.behaviours)

    def __contains__(self, behaviour_id: object) -> bool:
        return behaviour_id in self._by_id

    def get(self, behaviour_id: str) -> Behaviour | None:
        return self._by_id.get(behaviour_id)

    def ids(self) -> list[str]:
        return [b.id for b in self.behaviours]

    def select(self, patterns: list[str] | None) -> Catalogue:
        """Behaviours whose ID equals or starts with one of ``patterns`` (``partition/`` or an exact ID)."""
        if not patterns:
            return self
        keep = [b for b in self.behaviours if any(b.id == p or b.id.startswith(p.rstrip("/") + "/")
                                                  for p in patterns)]
        if not keep:
            raise CatalogueError(f"--behaviour: {patterns!r} matches no behaviour ID")
        return Catalogue(keep, self.version)


def _first_error(err: ValidationError) -> str:
    e = err.errors()[0]
    return f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"


def load_catalogue(directory: Path = BEHAVIOUR_DIR) -> Catalogue:
    """Load and validate every ``*.yaml`` in ``directory``; raises CatalogueError on the first problem."""
    behaviours: list[Behaviour] = []
    seen: dict[str, Path] = {}
    digest = hashlib.sha256()
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CatalogueError(f"{directory}: no behaviour files")
    for path in files:
        try:
            text = bounded_yaml.read_text(path)
            digest.update(text.encode())
            doc = BehaviourFile.model_validate(bounded_yaml.load(text))
        except (yaml.YAMLError, bounded_yaml.YamlBoundError, OSError) as err:
            raise CatalogueError(f"{path.name}: not valid YAML ({str(err).splitlines()[0][:80]})") from None
        except ValidationError as err:
            raise CatalogueError(f"{path.name}: {_first_error(err)}") from None
        if doc.area not in AREAS:
            raise CatalogueError(f"{path.name}: area {doc.area!r} is not one of {', '.join(AREAS)}")
        for b in doc.behaviours:
            if not _ID_RE.match(b.id):
                raise CatalogueError(f"{path.name}: id {b.id!r} is not a lower-case path like 'area/name'")
            if b.id in seen:
                raise CatalogueError(f"{path.name}: id {b.id!r} is already defined in {seen[b.id].name}")
            for name, target in b.targets.items():
                if parse_target(target) is None:
                    raise CatalogueError(f"{path.name}: id {b.id!r} target {name}: {target!r} is not '<op> <number>'")
            if b.area and b.area != doc.area:
                raise CatalogueError(f"{path.name}: id {b.id!r} says area {b.area!r} in a {doc.area!r} file")
            seen[b.id] = path
            behaviours.append(b.model_copy(update={"area": doc.area}))
    behaviours.sort(key=lambda b: AREAS.index(b.area))  # stable: keeps each file's order
    return Catalogue(behaviours, f"{__version__}+{digest.hexdigest()[:8]}")


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    """The catalogue shipped with this package (cached: it is read-only data)."""
    return load_catalogue()
