"""JSON Schemas of the top-level documents, exported from the pydantic models and checked in.

``hami schemas export`` rewrites the files; ``hami schemas export --check`` (and a test) fails when a
model changed without re-exporting, so the published contract never drifts silently from the code.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from .. import API_VERSION
from ..models import CapabilityMatrix, NodeInventory, PodAllocation, PodRequest
from ..models.inventory import INVENTORY_FORMAT
from ..models.skew import skew_schema
from ..simulation import DeviceProfile, NodeProfile

#: File stem -> model. Adding a model here is how a document joins the published contract.
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "node-inventory": NodeInventory,
    "capability-matrix": CapabilityMatrix,
    "device-profile": DeviceProfile,
    "node-profile": NodeProfile,
    "pod-allocation": PodAllocation,
    "pod-request": PodRequest,
}
#: Documents one release of hami-hal writes and another reads (docs/install.md, "Upgrading"), with the newest
#: ``format_version`` this release reads: their schemas follow the skew rule (:func:`~..models.skew.skew_schema`),
#: the others (profiles, matrices: written and read by the same release) stay strict, so a typo is caught.
SKEW_DOCUMENTS: dict[str, int] = {"node-inventory": INVENTORY_FORMAT}
SCHEMA_DIR = Path(__file__).parent


def render(stem: str) -> str:
    """The schema text of one document, stable across runs (sorted keys, trailing newline)."""
    schema = SCHEMA_MODELS[stem].model_json_schema(by_alias=True)
    if stem in SKEW_DOCUMENTS:
        schema = skew_schema(schema, SKEW_DOCUMENTS[stem])
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://hami-hal.io/schemas/{API_VERSION}/{stem}.schema.json",
        **schema,
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_path(stem: str, directory: Path = SCHEMA_DIR) -> Path:
    return directory / f"{stem}.schema.json"


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for stem in SCHEMA_MODELS:
        path = schema_path(stem, directory)
        path.write_text(render(stem))
        out.append(path)
    return out


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """Files that are missing or differ from the models (empty when in sync)."""
    stale = []
    for stem in SCHEMA_MODELS:
        path = schema_path(stem, directory)
        if not path.is_file() or path.read_text() != render(stem):
            stale.append(path.name)
    return stale


def load(stem: str) -> dict:
    """A checked-in schema as a dict (for validators that want the published file, not the model)."""
    return json.loads(schema_path(stem).read_text())
