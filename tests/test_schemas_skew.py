"""The published node-inventory schema follows the reader's skew rule (hami_hal/models/skew.py, docs/install.md
"Upgrading"): within the current ``format_version`` unknown properties are allowed at any depth, a newer
``format_version`` is refused, and every known property keeps its checks; the other schemas stay strict.

On main the schema kept the models' ``additionalProperties: false`` at every level: a validator holding an older
release's schema refused a newer agent's whole inventory, which the scheduler itself reads."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from hami_hal import schemas
from hami_hal.errors import InputError
from hami_hal.hami_compat import HAL_INVENTORY, parse_node
from hami_hal.models import (
    Device,
    NodeInventory,
    PartitionKind,
    PartitionModel,
    PartitionTemplate,
    Provenance,
)
from hami_hal.models.inventory import INVENTORY_FORMAT


def _inventory() -> dict:
    """What an agent of this release writes for a two-card node with a templated partition model."""
    part = PartitionModel(kind=PartitionKind.TEMPLATES, memory_mib=32768, max_slots=4, templates=[
        PartitionTemplate(name="t12", memory_mib=12288, compute_percent=50)])
    devs = [Device(vendor="nvidia", index=i, uuid=f"GPU-{i}", model="A100", hami_type="NVIDIA-A100",
                   memory_mib=32768, partition=part, provenance=Provenance(source="real")) for i in range(2)]
    return json.loads(NodeInventory(node="n1", source="real", devices=devs).model_dump_json(by_alias=True))


def _newer(doc: dict) -> dict:
    """The next release's agent: new fields at the top and at every depth, the same format_version."""
    doc = copy.deepcopy(doc)
    doc["future_top"] = {"x": [1]}
    doc["topology"]["future_topology"] = 1
    for d in doc["devices"]:
        d["future_device"] = True
        d["partition"]["future_partition"] = 7
        d["partition"]["templates"][0]["future_template"] = "t"
        d["provenance"]["future_provenance"] = "y"
    return doc


def _errors(stem: str, doc: dict) -> list[str]:
    v = jsonschema.Draft202012Validator(schemas.load(stem))
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.validator}" for e in v.iter_errors(doc))


def _read(doc: dict) -> NodeInventory:
    return parse_node({"metadata": {"name": "n1", "annotations": {HAL_INVENTORY: json.dumps(doc)}}}, [])


def test_the_schema_is_a_valid_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(schemas.load("node-inventory"))


def test_a_newer_agents_inventory_validates_and_reads_as_before():
    doc = _inventory()
    assert _errors("node-inventory", doc) == []
    assert _errors("node-inventory", _newer(doc)) == []
    assert _read(_newer(doc)).devices == _read(doc).devices


def test_a_newer_format_version_is_refused_by_the_schema_and_by_the_reader():
    doc = {**_inventory(), "format_version": INVENTORY_FORMAT + 1}
    assert _errors("node-inventory", doc) == ["format_version: maximum"]
    with pytest.raises(InputError) as err:
        _read(doc)
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(f"node n1: {HAL_INVENTORY}.format_version: {INVENTORY_FORMAT + 1} is newer than")
    assert _errors("node-inventory", {**_inventory(), "format_version": INVENTORY_FORMAT}) == []


@pytest.mark.parametrize(("path", "value", "error"), [
    (("devices", 0, "memory_mib"), -1, "devices/0/memory_mib: minimum"),
    (("devices", 0, "memory_mib"), "lots", "devices/0/memory_mib: type"),
    (("devices", 1, "partition", "templates", 0, "name"), 5, "devices/1/partition: anyOf"),  # PartitionModel | None
    (("source",), "trusted", "source: enum"),
    (("kind",), "SomethingElse", "kind: const"),
    (("format_version",), 0, "format_version: minimum"),
])
def test_known_fields_keep_their_checks_beside_unknown_ones(path, value, error):
    doc = _newer(_inventory())
    here = doc
    for key in path[:-1]:
        here = here[key]
    here[path[-1]] = value
    assert _errors("node-inventory", doc) == [error]


def test_a_required_field_stays_required():
    doc = _newer(_inventory())
    del doc["devices"][0]["uuid"]
    assert _errors("node-inventory", doc) == ["devices/0: required"]


@pytest.mark.parametrize("stem", sorted(set(schemas.SCHEMA_MODELS) - set(schemas.SKEW_DOCUMENTS)))
def test_documents_one_release_writes_and_reads_stay_strict(stem):
    """Profiles, matrices, requests: no version skew, so an unknown property is still a typo to catch."""
    text = json.dumps(schemas.load(stem))
    assert '"additionalProperties": false' in text
