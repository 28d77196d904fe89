"""AWS is the one thing mocked: moto's server on 127.0.0.1 (so presigned URLs download over
real HTTP and subprocesses reach the same mock), plus a signing-key fixture."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.registry.fixtures import prefix  # noqa: F401

moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (the dev extra)")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server per session on 127.0.0.1."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """boto3 (here and in subprocesses) talks to the moto server, emptied for each test."""
    import urllib.request
    import uuid

    import boto3

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_url,
        "WHICHBIN_CACHE": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(key, value)
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket


def _signing_stand_in() -> types.ModuleType:
    """The agreed signing API (security/signing.py, helper H7), for these tests only until
    that module is merged: Ed25519 over the canonical message."""
    import base64
    import hashlib
    import json
    from dataclasses import dataclass

    from cryptography.hazmat.primitives import serialization

    mod = types.ModuleType("whichbin.security.signing")

    def canonical_message(name: str, version: str, sha256: str, size: int) -> bytes:
        body = {"name": name, "version": version, "sha256": sha256, "size": size}
        tag = b"whichbin-deployment-v1\n"
        return tag + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @dataclass(frozen=True)
    class DeploymentSignature:
        key_id: str
        signature: str

    class Signer:
        def __init__(self, key) -> None:  # noqa: ANN001
            self.key = key
            raw = key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            self.key_id = hashlib.sha256(raw).hexdigest()[:16]

        @classmethod
        def from_pem(cls, data: bytes) -> Signer:
            return cls(serialization.load_pem_private_key(data, None))

        @classmethod
        def from_file(cls, path: Path) -> Signer:
            return cls.from_pem(Path(path).read_bytes())

        def sign(self, name: str, version: str, sha256: str, size: int) -> DeploymentSignature:
            sig = self.key.sign(canonical_message(name, version, sha256, size))
            return DeploymentSignature(self.key_id, base64.b64encode(sig).decode())

    mod.canonical_message = canonical_message  # type: ignore[attr-defined]
    mod.DeploymentSignature = DeploymentSignature  # type: ignore[attr-defined]
    mod.Signer = Signer  # type: ignore[attr-defined]
    return mod


@pytest.fixture()
def signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, object]:
    """An approver key file and its public key (the real signing module when present)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        import whichbin.security.signing  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "whichbin.security.signing", _signing_stand_in())
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "approver.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key.public_key()


def verify(public_key, payload: dict, name: str) -> None:  # noqa: ANN001
    """Check a deployment's signature the way devices do (raises when it does not verify)."""
    import base64

    from whichbin.security.signing import canonical_message

    message = canonical_message(name, payload["version"], payload["sha256"], payload["size"])
    public_key.verify(base64.b64decode(payload["signature"]), message)
