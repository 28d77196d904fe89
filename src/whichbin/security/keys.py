"""The approver's signing key on disk: where it lives, creating it (mode 0600), loading it."""

from __future__ import annotations

import os
from pathlib import Path

from whichbin.errors import ConfigError, SigningKeyError, WhichbinError
from whichbin.security.signing import Signer, new_private_pem


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/whichbin/signing-key.pem`` (``~/.config/...`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "whichbin" / "signing-key.pem"


def create_key_file(path: Path, force: bool = False) -> Signer:
    """Write a new Ed25519 private key to ``path``, readable by its owner only.

    Raises:
        ConfigError: ``path`` exists (and not ``force``) or cannot be written.
    """
    path = Path(path)
    pem = new_private_pem()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if force:
            path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise ConfigError(
            f"{path}: a signing key is already there; keep it, or pass --force to replace it "
            "(devices trusting the old key then refuse new deployments)"
        ) from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the signing key ({e.strerror})") from e
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)  # whatever the umask
    return Signer.from_pem(pem, str(path))


def load_signer(path: str | Path | None = None) -> Signer:
    """The signing key at ``path`` (default ``default_key_path()``).

    Raises:
        SigningKeyError: Missing or unusable, saying how to create one (an approval is
            then recorded and reported as not published).
    """
    key = Path(path) if path else default_key_path()
    if not key.is_file():
        raise SigningKeyError(
            f"no signing key at {key}: create one with `whichbin keys create` (or set "
            "deploy.signing_key / WHICHBIN_DEPLOY__SIGNING_KEY); devices refuse unsigned "
            "deployments"
        )
    try:
        return Signer.from_file(key)
    except WhichbinError as e:
        raise SigningKeyError(str(e)) from e


def write_public_key(signer: Signer, path: Path) -> None:
    """The public key PEM a device lists in ``edge.security.trusted_keys``."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(signer.public_pem())
    except OSError as e:
        raise ConfigError(f"{path}: cannot write the public key ({e.strerror})") from e
