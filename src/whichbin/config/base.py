"""The one base of every config section: strict (unknown keys are errors naming the key)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: ``extra="forbid"``, every field with a default and a description.

    Numbers are accepted for text fields: YAML and the environment read ``source: 0`` or
    ``WHICHBIN_EDGE__DEVICE_ID=42`` as numbers, and they mean the text.
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
