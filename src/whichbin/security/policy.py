"""What an edge accepts: trusted signing keys and where artifacts may be fetched from.

Config sections only (pydantic, no I/O); ``edge.security`` in the config file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Scheme = Literal["https", "http", "file"]


def _all_schemes() -> list[Scheme]:
    return ["https", "http", "file"]


class FetchPolicy(BaseModel):
    """Allowed artifact URLs, the size cap and retries (``edge.security.fetch``)."""

    model_config = ConfigDict(extra="forbid")

    schemes: list[Scheme] = Field(
        default_factory=_all_schemes,
        description="URL schemes allowed at all; http and file are further limited by "
        "http_hosts and file_root",
    )
    https_hosts: list[str] = Field([], description="Hosts https:// may reach; empty: any host")
    http_hosts: list[str] = Field(
        [],
        description="Hosts plain http:// may reach (the registry's `whichbin web` host); "
        "empty: http refused",
    )
    file_root: Path | None = Field(
        None,
        description="file:// URLs only under this directory (e.g. the registry on the same "
        "machine); unset: file refused",
    )
    max_size: int = Field(
        1 << 30,
        ge=1,
        description="Bytes an artifact may have at most, whatever the deployment says; the "
        "signed size caps each download below that",
    )
    timeout: float = Field(30.0, gt=0, description="Socket timeout (s) of an HTTP(S) download")
    retry_initial: float = Field(
        5.0, gt=0, description="Seconds before the first retry of a failed download or check"
    )
    retry_max: float = Field(300.0, gt=0, description="Longest wait between retries (s)")

    @field_validator("https_hosts", "http_hosts")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [h.strip().lower() for h in v if h.strip()]


class EdgeSecuritySettings(BaseModel):
    """Which deployments an edge accepts (``edge.security``)."""

    model_config = ConfigDict(extra="forbid")

    trusted_keys: list[Path] = Field(
        [],
        description="Public key files (PEM, `whichbin keys show --pem`) whose signed "
        "deployments are accepted; list two while rotating keys. None: every deployment is "
        "refused",
    )
    insecure_accept_unsigned: bool = Field(
        False,
        description="LAB BENCH ONLY: accept deployments without a (verifiable) signature; "
        "anyone who can publish to the broker can then install any model",
    )
    fetch: FetchPolicy = Field(default_factory=FetchPolicy)
