"""The ``mqtt:`` and ``deploy:`` sections: the broker and where edges fetch artifacts."""

from __future__ import annotations

from pydantic import Field

from whichbin.config.base import Section


class MqttConfig(Section):
    """The broker every component talks to (``mqtt:``); the password never sits here."""

    url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://[user@]host[:port] or mqtts://")
    prefix: str = Field("whichbin", description="Topic prefix")
    password_env: str = Field("WHICHBIN_MQTT_PASSWORD", description="Env var with the password")
    password_file: str | None = Field(None, description="File holding the password")
    ca_file: str | None = Field(None, description="CA bundle for mqtts://")
    cert_file: str | None = Field(None, description="Client certificate (whichbin certs)")
    key_file: str | None = Field(None, description="Client certificate's key")
    keepalive: int = Field(30, ge=5, description="Keepalive seconds")


class DeployConfig(Section):
    """Publishing approved versions to the fleet (``deploy:``)."""

    artifact_base_url: str | None = Field(
        None,
        description="Base URL edges fetch artifacts from (e.g. http://host:8080); "
        "default: a file:// URL into the registry",
    )
    signing_key: str | None = Field(
        None, description="Approver's Ed25519 key (default ~/.config/whichbin/signing-key.pem)"
    )
    timeout: float = Field(
        10.0, gt=0, description="Seconds to wait for the broker when publishing a deployment"
    )
