"""Shared base for every serialised model: strict fields, camelCase-free, versioned."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class HalModel(BaseModel):
    """Base model: unknown fields are an error, so a typo in a profile or matrix is caught early."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=False)
