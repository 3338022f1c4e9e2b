"""The checked-in JSON Schemas match the models; a change without `hami schemas export` fails here."""

from __future__ import annotations

import json

import pytest

from hami_hal import schemas


def test_checked_in_schemas_match_the_models():
    assert schemas.drift() == [], "run `hami schemas export` (or `make schemas`) and commit the result"


def test_drift_is_detected(tmp_path):
    schemas.export(tmp_path)
    assert schemas.drift(tmp_path) == []
    path = schemas.schema_path("pod-request", tmp_path)
    doc = json.loads(path.read_text())
    doc["properties"].pop("node_policy")
    path.write_text(json.dumps(doc))
    schemas.schema_path("node-profile", tmp_path).unlink()
    assert schemas.drift(tmp_path) == ["node-profile.schema.json", "pod-request.schema.json"]


@pytest.mark.parametrize("stem", sorted(schemas.SCHEMA_MODELS))
def test_schema_files_are_versioned_json_schema(stem):
    doc = schemas.load(stem)
    assert doc["$schema"].startswith("https://json-schema.org/") and "v1alpha1" in doc["$id"]
    assert doc["title"] == schemas.SCHEMA_MODELS[stem].__name__


def test_inventory_documents_carry_api_version_and_kind():
    props = schemas.load("node-inventory")["properties"]
    assert props["apiVersion"]["const"] == "hami-hal.io/v1alpha1" and props["kind"]["const"] == "NodeInventory"
