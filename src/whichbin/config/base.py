"""The one base of every config section: strict (unknown keys are errors naming the key)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: ``extra="forbid"``, every field with a default and a description."""

    model_config = ConfigDict(extra="forbid")
