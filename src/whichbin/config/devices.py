"""The ``pi:`` and ``web:`` sections: the display device and the dashboard server."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from whichbin.config.base import DeviceId, Section
from whichbin.errors import ConfigError


class PiConfig(Section):
    """Everything ``whichbin pi display`` takes (``pi:`` in the config file)."""

    device_id: DeviceId | None = Field(
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

    host: str = Field(
        "127.0.0.1",
        description="Address to listen on; beyond loopback only with users configured "
        "(whichbin users add)",
    )
    port: int = Field(8080, ge=1, le=65535, description="TCP port")
    publish: bool = Field(
        True, description="Approvals publish the deployment (false: record them only)"
    )
    allowed_hosts: list[str] = Field(
        ["localhost", "127.0.0.1", "::1"],
        description="Host header values served (a DNS-rebinding guard); web.host and the "
        "host of deploy.artifact_base_url are added; '*' accepts any (behind a proxy only)",
    )
    users_file: Path | None = Field(
        None,
        description="Users and API tokens (whichbin users); unset: users.sqlite in the "
        "local registry directory",
    )
    max_body_bytes: int = Field(
        65536, ge=1024, description="Larger request bodies are refused with 413"
    )
    login_window: float = Field(60.0, gt=0, description="Seconds failed logins are counted")
    login_attempts: int = Field(
        5,
        ge=1,
        description="Failed logins allowed per client address and per user name in "
        "login_window seconds; more are refused with 429",
    )
    session_hours: float = Field(
        12.0, gt=0, description="A dashboard login lasts this long (server restart: sooner)"
    )
