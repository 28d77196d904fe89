"""AWS is the one thing mocked: moto's server on 127.0.0.1 (so presigned URLs download over
real HTTP and subprocesses reach the same mock), plus an approver's signing key."""

from __future__ import annotations

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


@pytest.fixture()
def signing_key(tmp_path: Path) -> tuple[Path, object]:
    """An approver key file and the devices' trusted keys for it."""
    from whichbin.security.signing import Signer, TrustedKeys, new_private_pem

    path = tmp_path / "approver.pem"
    path.write_bytes(new_private_pem())
    return path, TrustedKeys.from_pems([Signer.from_file(path).public_pem()])


def verify(trusted, payload: dict) -> None:  # noqa: ANN001
    """Check a deployment's signature the way devices do (raises when it does not verify)."""
    from whichbin.contract import Deployment
    from whichbin.security.signing import verify_deployment

    verify_deployment(Deployment.model_validate(payload), trusted)
