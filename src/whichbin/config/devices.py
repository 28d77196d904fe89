"""The ``pi:`` and ``web:`` sections: the display device and the dashboard server."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from whichbin.config.base import Section
from whichbin.errors import ConfigError


class PiConfig(Section):
    """Everything ``whichbin pi display`` takes (``pi:`` in the config file)."""

    device_id: str | None = Field(
        None, description="The edge device whose events are shown (required)"
    )
    output: Literal["sensehat", "emulator", "terminal"] = Field(
        "sensehat", description="sensehat (on a Pi), emulator (sense_emu) or terminal"
    )
    hold: float = Field(3.0, ge=0.1, description="Seconds a bin's icon stays up before idle")
    rotation: Literal[0, 90, 180, 270] = Field(0, description="Rotate the picture clockwise")
    brightness: float = Field(1.0, ge=0, le=1, description="LED brightness, 0..1")
    deeplens_topic: str | None = Field(
        None,
        description='Also show the recipe\'s {"object": "Compost"} messages from this topic '
        "(e.g. deeplens/trash/infer)",
    )
    data_dir: Path | None = Field(
        Path("whichbin-pi"),
        description="Joystick corrections wait here (outbox.sqlite) while the broker is away; "
        "unset: corrections made while it is away are dropped",
    )

    def require(self) -> PiConfig:
        """The config for running: ``device_id`` must be set.

        Raises:
            ConfigError: naming the key and the flag that sets it.
        """
        if not self.device_id:
            raise ConfigError("pi.device_id: required (set --device-id or pi.device_id)")
        return self


class WebConfig(Section):
    """``whichbin web`` (``web:`` in the config file); the registry, the broker and the
    artifact URL come from the ``pipeline.registry``, ``mqtt`` and ``deploy`` sections."""

    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0: all)")
    port: int = Field(8080, ge=1, le=65535, description="TCP port")
    publish: bool = Field(
        True, description="Approvals publish the deployment (false: record them only)"
    )
