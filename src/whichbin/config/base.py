"""The one base of every config section: strict (unknown keys are errors naming the key)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from whichbin.errors import ConfigError


class Section(BaseModel):
    """A config section: ``extra="forbid"``, every field with a default and a description.

    Numbers are accepted for text fields: YAML and the environment read ``source: 0`` or
    ``WHICHBIN_EDGE__DEVICE_ID=42`` as numbers, and they mean the text.
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


def _device_id(value: str) -> str:
    """``value`` if ``contract.check_device_id`` accepts it (as a pydantic error if not)."""
    from whichbin.contract import check_device_id  # lazily: config imports no runtime module

    try:
        return check_device_id(value, "--device-id")
    except ConfigError as e:
        raise ValueError(str(e)) from e


DeviceId = Annotated[str, AfterValidator(_device_id)]
"""A device id field: ``#``, ``+``, ``fleet`` or ``a/b`` are config errors naming the key, so
no entry point can subscribe to every device or publish to the fleet by accident."""
