"""What ``SagemakerRegistry`` keeps outside SageMaker's own fields, and its AWS helpers.

Pure pieces (the ``create_model_package`` arguments, the history derived from a record)
and the S3 documents next to the artifacts (device pins, verified downloads), each
taking its boto3 client as an argument.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from whichbin.errors import RegistryError
from whichbin.registry.base import ApprovalStatus, ModelVersion, Pin, RegistryEvent

META = "whichbin."


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Turn boto errors into one-line RegistryErrors."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as e:
        err = e.response.get("Error", {})
        raise RegistryError(f"{what}: {err.get('Code', 'error')}: {err.get('Message', e)}") from e
    except BotoCoreError as e:
        raise RegistryError(f"{what}: {e}") from e


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key)."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def report_files(report: Path) -> builtins.list[tuple[Path, str]]:
    """The files of a report (a file or a folder) with their names under ``report/``."""
    if report.is_file():
        return [(report, report.name)]
    files = sorted(p for p in report.rglob("*") if p.is_file())
    return [(f, f.relative_to(report).as_posix()) for f in files]


def package_arguments(
    name: str, registration: dict[str, Any], registration_uri: str, metrics_uri: str
) -> dict[str, Any]:
    """``create_model_package`` arguments for a staged registration (pending approval)."""
    code_version = str(registration["lineage"].get("code_version", ""))[:1024]
    return {
        "ModelPackageGroupName": name,
        "ModelPackageDescription": f"whichbin bundle, gate {registration['gate']}",
        "ModelApprovalStatus": ApprovalStatus.PENDING.value,
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": metrics_uri}
            }
        },
        "MetadataProperties": {"CommitId": code_version, "GeneratedBy": "whichbin pipeline"},
        "CustomerMetadataProperties": {
            META + "registration": registration_uri,
            META + "sha256": registration["sha256"],
            META + "gate": str(registration["gate"]),
            META + "artifact": registration["artifact"],
        },
    }


def derived_history(v: ModelVersion) -> builtins.list[RegistryEvent]:
    """The registration, latest approval and latest rejection of ``v``, oldest first."""
    events = [RegistryEvent(version=v.id, action="register", by="", at=v.created, note=v.gate)]
    decisions = (
        ("approve", v.approved_by, v.approved_at, v.note),
        ("reject", v.rejected_by, v.rejected_at, v.rejected_reason),
    )
    for action, by, at, note in decisions:
        if at:
            events.append(
                RegistryEvent(version=v.id, action=action, by=by or "", at=at, note=note or "")
            )
    return sorted(events, key=lambda e: e.at)


def read_pins(s3: Any, bucket: str, key: str) -> dict[str, Pin]:
    """The pins stored at ``s3://bucket/key`` by device ({} when there is no document)."""
    with aws_errors(f"read s3://{bucket}/{key}"):
        found = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents")
        if not found:
            return {}
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return {d["device"]: Pin.model_validate(d) for d in json.loads(body)}


def write_pins(s3: Any, bucket: str, key: str, pins: dict[str, Pin]) -> None:
    """Store ``pins`` at ``s3://bucket/key``, sorted by device."""
    with aws_errors(f"write s3://{bucket}/{key}"):
        doc = [p.model_dump(mode="json") for _, p in sorted(pins.items())]
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc))


def download_verified(s3: Any, version: ModelVersion, dest: Path) -> Path:
    """Download ``version.artifact`` to ``dest`` (once) and check its sha256; return ``dest``."""
    import os
    import tempfile

    from whichbin.inference import sha256_file

    expected = version.sha256.strip().lower()
    if dest.is_file() and sha256_file(dest) == expected:
        return dest
    bucket, key = split_s3(version.artifact)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A staging file of its own per call: concurrent downloads never share one.
    fd, name = tempfile.mkstemp(prefix=".download-", suffix=".onnx", dir=dest.parent)
    os.close(fd)
    staged = Path(name)
    try:
        with aws_errors(f"download {version.artifact}"):
            s3.download_file(bucket, key, str(staged))
        actual = sha256_file(staged)
        if actual != expected:
            raise RegistryError(
                f"{version.id}: {version.artifact}: sha256 mismatch (expected "
                f"{expected[:12]}…, got {actual[:12]}…): the artifact was not installed"
            )
        staged.replace(dest)  # atomic: dest is only ever a verified copy
        return dest
    finally:
        staged.unlink(missing_ok=True)
