"""``SagemakerRegistry``: the ``sagemaker://GROUP`` backend (SageMaker Model Registry).

A version is a versioned model package in the package group named like the model
(``sagemaker://trash-classifier`` → group ``trash-classifier``). SageMaker holds the
approval status (``ModelApprovalStatus``, the same values whichbin uses) and who/when
in ``CustomerMetadataProperties``; S3 holds the immutable parts::

    s3://BUCKET/PREFIX/<name>/<sha256[:16]>-<id>/model.onnx
    s3://BUCKET/PREFIX/<name>/<sha256[:16]>-<id>/registration.json   metrics, gate, lineage
    s3://BUCKET/PREFIX/<name>/<sha256[:16]>-<id>/metrics.json        ModelMetrics.ModelQuality
    s3://BUCKET/PREFIX/<name>/<sha256[:16]>-<id>/report/...

URI: ``sagemaker://GROUP?bucket=B&prefix=P&region=R`` (bucket also from
``WHICHBIN_SAGEMAKER_BUCKET``; credentials and region the usual boto3 way). Artifacts are
downloaded to a local cache for ``artifact_path`` (``whichbin web`` serves them), and
edges need ``--artifact-base-url`` because they cannot read S3.

Device pins live in ``s3://BUCKET/PREFIX/<group>/pins.json`` (registry/sagemaker_records.py).

Differences from the local backend: the history is derived from the current record (the
latest approval and rejection, not every one; a rollback is an approval whose note starts
with ``rollback:``; pins are not in it), and the artifact is not stamped with its version
id (SageMaker allocates the number after the upload).
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from whichbin.contract import iso, utc_now
from whichbin.errors import RegistryError
from whichbin.registry.base import (
    ApprovalStatus,
    Change,
    Gate,
    ModelVersion,
    Pin,
    Registry,
    RegistryEvent,
    check_name,
    new_pin,
)
from whichbin.registry.base import version_id as make_id
from whichbin.registry.inputs import Registration
from whichbin.registry.sagemaker_records import (
    META,
    aws_errors,
    derived_history,
    download_verified,
    package_arguments,
    read_pins,
    report_files,
    split_s3,
    write_pins,
)

logger = logging.getLogger(__name__)


class ForeignPackage(RegistryError):
    """A model package in the group that whichbin did not create (no whichbin records)."""


# CustomerMetadataProperties keys holding the mutable approval fields.
DECISION_FIELDS = ("approved_by", "approved_at", "rejected_reason", "rejected_by", "rejected_at")
REGISTRATION_FIELDS = (
    "sha256", "artifact", "size_bytes", "metrics", "gate", "reasons", "lineage", "created", "report"
)  # fmt: skip


class SagemakerRegistry(Registry):
    """Model versions as SageMaker model packages; artifacts and records in S3."""

    def __init__(
        self,
        group: str,
        bucket: str,
        prefix: str = "whichbin",
        cache_dir: Path | None = None,
        region: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        sagemaker_client: Any = None,
        s3_client: Any = None,
    ) -> None:
        import boto3

        self.default_name = check_name(group)
        self.uri = f"sagemaker://{group}"
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.clock = clock
        self.sm = sagemaker_client or boto3.client("sagemaker", region_name=region)
        self.s3 = s3_client or boto3.client("s3", region_name=region)
        cache = os.environ.get("WHICHBIN_CACHE", "~/.cache/whichbin")
        self.cache_dir = Path(cache_dir or Path(cache).expanduser() / "sagemaker" / group)
        self._registrations: dict[str, dict[str, Any]] = {}
        self.staging = False  # see register()
        self.staged: dict[str, Any] | None = None

    # -- S3 ------------------------------------------------------------------------
    def _put_file(self, path: Path, key: str) -> str:
        with aws_errors(f"upload {path} to s3://{self.bucket}/{key}"):
            self.s3.upload_file(str(path), self.bucket, key)
        return f"s3://{self.bucket}/{key}"

    def _put_json(self, doc: dict[str, Any], key: str) -> str:
        with aws_errors(f"write s3://{self.bucket}/{key}"):
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(doc).encode(),
                ContentType="application/json",
            )
        return f"s3://{self.bucket}/{key}"

    def _registration(self, uri: str) -> dict[str, Any]:
        if uri not in self._registrations:  # immutable once written: cache forever
            bucket, key = split_s3(uri)
            with aws_errors(f"read {uri}"):
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            try:
                doc = json.loads(body)
            except ValueError as e:
                raise ForeignPackage(f"{uri}: not a whichbin registration record ({e})") from e
            if not isinstance(doc, dict):
                raise ForeignPackage(f"{uri}: not a whichbin registration record (not an object)")
            self._registrations[uri] = doc
        return self._registrations[uri]

    # -- SageMaker -----------------------------------------------------------------
    def _ensure_group(self, name: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.sm.describe_model_package_group(ModelPackageGroupName=name)
        except ClientError:
            with aws_errors(f"create model package group {name}"):
                self.sm.create_model_package_group(
                    ModelPackageGroupName=name,
                    ModelPackageGroupDescription="whichbin bin classifier versions",
                )

    def _summaries(self, name: str, status: str | None = None) -> builtins.list[dict[str, Any]]:
        args: dict[str, Any] = {"ModelPackageGroupName": name, "SortBy": "CreationTime"}
        if status:
            args["ModelApprovalStatus"] = status
        out: builtins.list[dict[str, Any]] = []
        with aws_errors(f"list model packages of {name}"):
            for page in self.sm.get_paginator("list_model_packages").paginate(**args):
                out.extend(page["ModelPackageSummaryList"])
        return sorted(out, key=lambda s: s.get("ModelPackageVersion", 0))

    def _arn(self, name: str, number: int) -> str:
        for s in self._summaries(name):
            if s.get("ModelPackageVersion") == number:
                return s["ModelPackageArn"]
        raise self._not_found(name, number)

    def _describe(self, arn: str) -> tuple[ModelVersion, dict[str, str]]:
        with aws_errors(f"describe {arn}"):
            d = self.sm.describe_model_package(ModelPackageName=arn)
        props: dict[str, str] = dict(d.get("CustomerMetadataProperties") or {})
        if not props.get(META + "registration"):
            raise ForeignPackage(
                f"{arn}: not a whichbin model package (no {META}registration metadata); "
                "whichbin reads only the packages it registered"
            )
        reg = self._registration(props[META + "registration"])
        reg = {k: v for k, v in reg.items() if k in REGISTRATION_FIELDS}
        name, number = d["ModelPackageGroupName"], int(d["ModelPackageVersion"])
        decisions = {f: props.get(META + f) or None for f in DECISION_FIELDS}
        status = d.get("ModelApprovalStatus", ApprovalStatus.PENDING.value)
        if status == ApprovalStatus.APPROVED.value and not decisions["approved_at"]:
            # Approved in the SageMaker console or API: its last change was the approval.
            changed = d.get("LastModifiedTime") or d.get("CreationTime")
            decisions["approved_at"] = iso(changed) if isinstance(changed, datetime) else None
        try:
            version = ModelVersion.model_validate(
                {
                    **reg,
                    **decisions,
                    "id": make_id(name, number),
                    "name": name,
                    "number": number,
                    "status": status,
                    "note": d.get("ApprovalDescription") or "",
                }
            )
        except ValueError as e:  # pydantic's ValidationError: a record whichbin did not write
            first = (str(e).splitlines() or [""])[0]
            raise ForeignPackage(f"{arn}: not a whichbin model package ({first})") from e
        return version, props

    def _versions(self, summaries: builtins.list[dict[str, Any]]) -> builtins.list[ModelVersion]:
        """The whichbin versions among ``summaries``; packages whichbin did not create are
        skipped (and logged)."""
        out: builtins.list[ModelVersion] = []
        for s in summaries:
            try:
                out.append(self._describe(s["ModelPackageArn"])[0])
            except ForeignPackage as e:
                logger.warning("skipped: %s", e)
        return out

    def _update(self, arn: str, version: ModelVersion, props: dict[str, str]) -> None:
        fields = version.model_dump(include=set(DECISION_FIELDS))
        new = {k: v for k, v in props.items() if k.removeprefix(META) not in DECISION_FIELDS}
        new.update({META + k: str(v) for k, v in fields.items() if v is not None})
        args: dict[str, Any] = {
            "ModelPackageArn": arn,
            "ModelApprovalStatus": version.status.value,
            "ApprovalDescription": version.note[:1024],
            "CustomerMetadataProperties": new,
        }
        removed = [k for k in props if k not in new]
        if removed:
            args["CustomerMetadataPropertiesToRemove"] = removed
        with aws_errors(f"update {version.id}"):
            self.sm.update_model_package(**args)

    # -- Registry protocol ------------------------------------------------------------
    def _register(self, reg: Registration, gate: Gate, reasons: builtins.list[str]) -> ModelVersion:
        """Upload the artifact and records to S3 and create a versioned model package.

        When ``staging`` (the SageMaker pipeline's evaluate step), stop after the upload:
        ``staged`` then holds the ``create_model_package`` arguments, which the pipeline's
        registration step passes once the quality gate passed.
        """
        name = reg.name
        from whichbin.inference import sha256_file

        sha = sha256_file(reg.artifact)
        folder = f"{self.prefix}/{name}/{sha[:16]}-{uuid.uuid4().hex[:8]}"
        artifact_uri = self._put_file(reg.artifact, f"{folder}/model.onnx")
        report_uri = None
        if reg.report is not None:
            for f, rel in report_files(reg.report):
                self._put_file(f, f"{folder}/report/{rel}")
            report_uri = f"s3://{self.bucket}/{folder}/report/" + (
                reg.report.name if reg.report.is_file() else ""
            )
        registration = {
            "sha256": sha,
            "artifact": artifact_uri,
            "size_bytes": reg.artifact.stat().st_size,
            "metrics": reg.metrics,
            "gate": gate,
            "reasons": reasons,
            "lineage": {**reg.lineage, "source_artifact": str(reg.artifact), "source_sha256": sha},
            "created": iso(self.clock()),
            "report": report_uri,
        }
        registration_uri = self._put_json(registration, f"{folder}/registration.json")
        metrics_uri = self._put_json(reg.metrics, f"{folder}/metrics.json")
        args = package_arguments(name, registration, registration_uri, metrics_uri)
        if self.staging:
            self.staged = args
            # Not a version yet: the pipeline's registration step allocates the number.
            return ModelVersion.model_validate(
                {**registration, "id": f"{name}/staged", "name": name, "number": 1}
            )
        self._ensure_group(name)
        with aws_errors(f"create model package in {name}"):
            arn = self.sm.create_model_package(**args)["ModelPackageArn"]
        version, _ = self._describe(arn)
        return version

    def describe_arn(self, arn: str) -> ModelVersion:
        """The version a model package ARN names (an EventBridge event carries the ARN)."""
        return self._describe(arn)[0]

    def get(self, version_id: str) -> ModelVersion:
        return self._describe(self._arn(*self._parse(version_id)))[0]

    def _change(
        self, version_id: str, action: str, change: Change, by: str, note: str
    ) -> ModelVersion:
        arn = self._arn(*self._parse(version_id))
        version, props = self._describe(arn)
        version = change(version, self.clock())
        self._update(arn, version, props)
        return version

    # -- pins: one JSON document next to the artifacts ----------------------------------
    @property
    def _pins_key(self) -> str:
        return f"{self.prefix}/{self.default_name}/pins.json"

    def pin(self, device: str, version_id: str, by: str, reason: str = "") -> Pin:
        pin = new_pin(device, self.get(version_id), by, reason, self.clock())
        pins = read_pins(self.s3, self.bucket, self._pins_key)
        write_pins(self.s3, self.bucket, self._pins_key, {**pins, pin.device: pin})
        return pin

    def _unpin(self, device: str, by: str) -> Pin | None:
        pins = read_pins(self.s3, self.bucket, self._pins_key)
        removed = pins.pop(device, None)
        if removed is not None:
            write_pins(self.s3, self.bucket, self._pins_key, pins)
        return removed

    def pins(self) -> builtins.list[Pin]:
        return [p for _, p in sorted(read_pins(self.s3, self.bucket, self._pins_key).items())]

    def latest_approved(self, name: str) -> ModelVersion | None:
        approved = self._versions(self._summaries(name, ApprovalStatus.APPROVED.value))
        return max(approved, key=lambda v: (v.approved_at or "", v.number), default=None)

    def artifact_path(self, version_id: str) -> Path:
        """Download (once) and verify the artifact; return the cached local path."""
        version = self.get(version_id)
        dest = self.cache_dir / version.name / str(version.number) / "model.onnx"
        return download_verified(self.s3, version, dest)

    def history(self, version_id: str) -> builtins.list[RegistryEvent]:
        return derived_history(self.get(version_id))

    def list(self, name: str | None = None) -> builtins.list[ModelVersion]:
        """Versions of ``name`` (default: this registry's group), oldest first."""
        from botocore.exceptions import ClientError

        group = name or self.default_name
        if self.staging:
            return []  # every evaluation is staged; SageMaker's step cache skips unchanged runs
        try:
            self.sm.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError:
            return []
        return self._versions(self._summaries(group))


def create_sagemaker_registry(uri: str, default_name: str) -> SagemakerRegistry:
    """Open ``sagemaker://GROUP?bucket=B&prefix=P&region=R``."""
    parsed = urlparse(uri)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    group = parsed.netloc or default_name
    bucket = query.get("bucket") or os.environ.get("WHICHBIN_SAGEMAKER_BUCKET")
    if not bucket:
        raise RegistryError(
            f"--registry {uri}: say which S3 bucket holds the artifacts: "
            "sagemaker://GROUP?bucket=NAME or WHICHBIN_SAGEMAKER_BUCKET"
        )
    try:
        import boto3  # noqa: F401
    except ImportError as e:
        raise RegistryError(f"--registry {uri}: needs boto3 (pip install boto3)") from e
    return SagemakerRegistry(
        group, bucket, prefix=query.get("prefix", "whichbin"), region=query.get("region")
    )
