"""Ed25519 signatures over deployments: the approver signs, devices verify.

The signed message binds the model name, its semantic version, the artifact's sha256 and
its size, so a forged deployment (any file with its own sha256) never verifies. Everything
here is pure except ``from_file`` / ``from_files``, which read PEM key files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from whichbin.errors import ConfigError, DeployError

DOMAIN = b"whichbin-deployment-v1\n"


class SignatureError(DeployError):
    """A deployment's signature is missing, from an untrusted key, or does not verify.
    ``missing`` is True when nothing could be checked (no trusted key, or no signature):
    the only refusals a lab bench's insecure mode may wave through."""

    permanent = True  # the same message never verifies later: no retry

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def canonical_message(name: str, version: str, sha256: str, size: int) -> bytes:
    """The exact bytes that are signed: a domain tag, then compact sorted JSON."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise SignatureError(f"deployment {version}: size {size!r} is not a byte count")
    body = {"name": name, "version": version, "sha256": sha256, "size": size}
    return DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of the sha256 of the raw 32-byte public key."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM, what devices list as trusted keys."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def new_private_pem() -> bytes:
    """A fresh Ed25519 private key as unencrypted PKCS#8 PEM (store it mode 0600)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what} ({e.strerror})") from e


@dataclass(frozen=True)
class DeploymentSignature:
    """What goes into the deployment payload: ``key_id`` and base64 ``signature``."""

    key_id: str
    signature: str


class Signer:
    """Holds the approver's private key and signs deployments."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_pem(cls, data: bytes, source: str = "signing key") -> Signer:
        """Load an unencrypted PKCS#8 PEM Ed25519 private key."""
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as e:
            raise ConfigError(
                f"{source}: not an unencrypted PEM private key (create one with "
                "`whichbin keys create`)"
            ) from e
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(
                f"{source}: not an Ed25519 key (create one with `whichbin keys create`)"
            )
        return cls(key)

    @classmethod
    def from_file(cls, path: str | Path) -> Signer:
        return cls.from_pem(_read(path, "the signing key"), str(path))

    def public_pem(self) -> bytes:
        return public_pem(self.public_key)

    def sign(self, name: str, version: str, sha256: str, size: int) -> DeploymentSignature:
        sig = self._key.sign(canonical_message(name, version, sha256, size))
        return DeploymentSignature(self.key_id, base64.b64encode(sig).decode("ascii"))


def load_public_pem(data: bytes, source: str = "public key") -> Ed25519PublicKey:
    """An Ed25519 public key from SubjectPublicKeyInfo PEM (``whichbin keys show --pem``)."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"{source}: not a PEM public key (export one with `whichbin keys show`)"
        ) from e
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{source}: not an Ed25519 public key")
    return key


class TrustedKeys(Mapping[str, Ed25519PublicKey]):
    """The public keys a device accepts deployments from, by key id (two during rotation)."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self._keys = {key_id(k): k for k in keys}

    @classmethod
    def from_pems(cls, pems: Iterable[bytes]) -> TrustedKeys:
        return cls(load_public_pem(p) for p in pems)

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> TrustedKeys:
        return cls(load_public_pem(_read(p, "a trusted key"), str(p)) for p in paths)

    def __getitem__(self, kid: str) -> Ed25519PublicKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def verify(
        self, name: str, version: str, sha256: str, size: int, key_id: str, signature: str
    ) -> None:
        """Return if ``signature`` by ``key_id`` covers these values, else raise SignatureError."""
        if not self._keys:
            raise SignatureError("no trusted key", missing=True)
        if not signature or not key_id:
            raise SignatureError("unsigned deployment", missing=True)
        public = self._keys.get(key_id)
        if public is None:
            raise SignatureError(f"unknown key {key_id}")
        try:
            raw = base64.b64decode(signature, validate=True)
            public.verify(raw, canonical_message(name, version, sha256, size))
        except (InvalidSignature, binascii.Error, ValueError) as e:
            raise SignatureError("bad signature") from e


def model_name(version: str) -> str:
    """``trash-classifier/7`` → ``trash-classifier`` (the name the approver signed)."""
    return version.rsplit("/", 1)[0] if "/" in version else version


def verify_deployment(payload: Any, trusted: TrustedKeys) -> None:
    """Verify a ``contract.Deployment`` (or anything with its fields) against ``trusted``.

    Raises:
        SignatureError: One line: "no trusted key", "unsigned deployment", "unknown key <id>"
            or "bad signature".
    """
    if not trusted:
        raise SignatureError("no trusted key", missing=True)
    size = getattr(payload, "size", None)
    signature = getattr(payload, "signature", None) or ""
    kid = getattr(payload, "key_id", None) or ""
    if not signature or not kid or size is None:
        raise SignatureError("unsigned deployment", missing=True)
    version = str(payload.version)
    trusted.verify(model_name(version), version, str(payload.sha256), size, kid, signature)
