"""The sagemaker:// backend against moto's SageMaker and S3 (AWS is the one thing mocked)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.registry.fixtures import BAD_REASONS, GOOD_METRICS, register
from whichbin.deploy import DeploymentRefused, artifact_url
from whichbin.errors import ConfigError, RegistryError
from whichbin.registry import ApprovalStatus, TransitionRefused, VersionNotFound, open_registry

moto = pytest.importorskip("moto", reason="needs moto for the mocked SageMaker registry")
boto3 = pytest.importorskip("boto3")


class Clock:
    """Advances one minute per call, so approvals have distinct times."""

    def __init__(self) -> None:
        self.t = datetime(2026, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.t += timedelta(minutes=1)
        return self.t


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "WHICHBIN_CACHE": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="models")
        yield


def test_sagemaker_register_approve_reject(aws: None, color_bundle: Path, tmp_path: Path) -> None:
    reg = open_registry("sagemaker://trash-classifier?bucket=models&prefix=wb")
    reg.clock = Clock()  # type: ignore[attr-defined]
    assert reg.list() == []
    (tmp_path / "report.md").write_text("# eval")
    v1 = register(reg, color_bundle, report=tmp_path / "report.md")  # type: ignore[arg-type]
    v2 = register(reg, color_bundle, passed=False)  # type: ignore[arg-type]
    v3 = register(reg, color_bundle)  # type: ignore[arg-type]

    assert (
        [v.id for v in reg.list()]
        == [v1.id, v2.id, v3.id]
        == [
            "trash-classifier/1",
            "trash-classifier/2",
            "trash-classifier/3",
        ]
    )
    got = reg.get("1")
    assert got.metrics == GOOD_METRICS and got.status == ApprovalStatus.PENDING
    assert got.artifact.startswith("s3://models/wb/trash-classifier/")
    assert got.report and got.report.endswith("/report/report.md")
    assert reg.get("2").reasons == BAD_REASONS

    with pytest.raises(TransitionRefused, match="failed the quality gate"):
        reg.approve("2", by="ana")
    with pytest.raises(VersionNotFound, match="trash-classifier/9"):
        reg.get("9")

    reg.approve("1", by="ana", note="first")
    reg.approve("3", by="bo")
    assert reg.latest_approved("trash-classifier").id == "trash-classifier/3"  # type: ignore[union-attr]
    reg.approve("1", by="cy", note="roll back")
    assert reg.latest_approved("trash-classifier").id == "trash-classifier/1"  # type: ignore[union-attr]
    rejected = reg.reject("1", reason="bad on lids", by="cy")
    assert rejected.status == ApprovalStatus.REJECTED and rejected.approved_by == "cy"
    assert reg.latest_approved("trash-classifier").id == "trash-classifier/3"  # type: ignore[union-attr]

    described = boto3.client("sagemaker").list_model_packages(
        ModelPackageGroupName="trash-classifier", ModelApprovalStatus="Approved"
    )["ModelPackageSummaryList"]
    assert [s["ModelPackageVersion"] for s in described] == [3]  # SageMaker's own view agrees
    assert [e.action for e in reg.history("1")] == ["register", "approve", "reject"]

    path = reg.artifact_path("3")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == reg.get("3").sha256

    # Edges cannot read s3:// URLs: deploying needs the web server's base URL.
    with pytest.raises(DeploymentRefused, match="--artifact-base-url"):
        artifact_url(reg.get("3"))
    assert artifact_url(reg.get("3"), "http://h:8080").endswith("/trash-classifier/3/model.onnx")


def test_sagemaker_uri_needs_a_bucket(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WHICHBIN_SAGEMAKER_BUCKET", raising=False)
    with pytest.raises(RegistryError, match="bucket"):
        open_registry("sagemaker://trash-classifier")


def test_sagemaker_register_refuses_bad_input_before_uploading(
    aws: None, color_bundle: Path, tmp_path: Path
) -> None:
    reg = open_registry("sagemaker://trash-classifier?bucket=models&prefix=wb")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(RegistryError, match="nothere.onnx.*artifact file not found"):
        register(reg, tmp_path / "nothere.onnx")  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="junk.onnx: cannot register"):
        register(reg, junk)  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="missing.md: cannot register: report not found"):
        register(reg, color_bundle, report=tmp_path / "missing.md")  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="metrics must be plain JSON"):
        reg.register("trash-classifier", color_bundle, {"x": object()}, True, [], {})

    assert reg.list() == []
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket="models")


def test_sagemaker_artifact_that_changed_in_s3_is_refused(
    aws: None, color_bundle: Path, tmp_path: Path
) -> None:
    reg = open_registry("sagemaker://trash-classifier?bucket=models&prefix=wb")
    version = register(reg, color_bundle)  # type: ignore[arg-type]
    bucket, _, key = version.artifact.removeprefix("s3://").partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=b"tampered")
    with pytest.raises(RegistryError, match="trash-classifier/1: .*sha256 mismatch"):
        reg.artifact_path("1")
    assert reg.cache_dir.is_relative_to(tmp_path / "cache")  # type: ignore[attr-defined]
    assert not list(reg.cache_dir.rglob("*.onnx"))  # type: ignore[attr-defined]  # none kept


def test_sagemaker_rollback_and_pins(aws: None, color_bundle: Path) -> None:
    reg = open_registry("sagemaker://trash-classifier?bucket=models&prefix=wb")
    reg.clock = Clock()  # type: ignore[attr-defined]
    v1 = register(reg, color_bundle)  # type: ignore[arg-type]
    v2 = register(reg, color_bundle)  # type: ignore[arg-type]
    reg.approve(v1.id, by="ana")
    reg.approve(v2.id, by="ana")
    assert reg.pins() == []
    with pytest.raises(TransitionRefused, match="needs a reason"):
        reg.rollback(v1.id, by="bo", reason="")
    back = reg.rollback(v1.id, by="bo", reason="v2 confuses lids")
    assert back.note == "rollback: v2 confuses lids"
    assert reg.latest_approved("trash-classifier").id == v1.id  # type: ignore[union-attr]

    reg.pin("cam1", v2.id, by="cy", reason="trial")
    reg.pin("cam0", v1.id, by="cy")
    assert [(p.device, p.version) for p in reg.pins()] == [("cam0", v1.id), ("cam1", v2.id)]
    with pytest.raises(ConfigError, match="reserved"):
        reg.pin("fleet", v1.id, by="cy")
    assert reg.unpin("cam1", by="dee") is not None and reg.unpin("cam1", by="dee") is None
    reopened = open_registry("sagemaker://trash-classifier?bucket=models&prefix=wb")
    assert [p.device for p in reopened.pins()] == ["cam0"]


def test_sagemaker_skips_model_packages_whichbin_did_not_create(
    aws: None, color_bundle: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A package added to the group by hand (or another tool) is not a version: list and
    latest_approved skip it (logged); reading it is a one-line RegistryError."""
    reg = open_registry("sagemaker://trash-classifier?bucket=models&prefix=wb")
    v1 = register(reg, color_bundle)  # type: ignore[arg-type]
    reg.approve("1", by="ana")
    sm = boto3.client("sagemaker")
    foreign = sm.create_model_package(
        ModelPackageGroupName="trash-classifier",
        ModelPackageDescription="made in the console",
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"team": "vision"},
    )["ModelPackageArn"]
    boto3.client("s3").put_object(Bucket="models", Key="x/registration.json", Body=b"not json")
    sm.create_model_package(
        ModelPackageGroupName="trash-classifier",
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"whichbin.registration": "s3://models/x/registration.json"},
    )

    assert [v.id for v in reg.list()] == [v1.id]
    assert reg.latest_approved("trash-classifier").id == v1.id  # type: ignore[union-attr]
    assert "not a whichbin model package" in caplog.text
    for version_id in ("2", "3"):
        with pytest.raises(RegistryError, match="not a whichbin") as e:
            reg.get(version_id)
        assert "\n" not in str(e.value)
    with pytest.raises(RegistryError, match=f"{foreign}: not a whichbin model package"):
        reg.describe_arn(foreign)  # type: ignore[attr-defined]


def test_concurrent_artifact_downloads_do_not_share_a_staging_file(tmp_path: Path) -> None:
    """Two processes' (here: threads') downloads of one artifact each get a verified copy."""
    import threading

    from whichbin.registry.base import ModelVersion
    from whichbin.registry.sagemaker_records import download_verified

    body = bytes(range(256)) * 4096
    barrier = threading.Barrier(2, timeout=10)

    class S3:
        """Writes the object in halves, both downloads being mid-write at once."""

        def download_file(self, bucket: str, key: str, filename: str) -> None:
            with open(filename, "wb") as f:
                f.write(body[: len(body) // 2])
                f.flush()
                barrier.wait()
                f.write(body[len(body) // 2 :])
            barrier.wait()

    sha = hashlib.sha256(body).hexdigest()
    version = ModelVersion(
        id="m/1", name="m", number=1, sha256=f" {sha.upper()} ", artifact="s3://b/k",
        size_bytes=len(body), gate="passed", created="",
    )  # fmt: skip
    dest = tmp_path / "cache" / "m" / "1" / "model.onnx"
    results: list[object] = []

    def fetch() -> None:
        try:
            results.append(download_verified(S3(), version, dest))
        except Exception as e:  # noqa: BLE001  # reported below
            results.append(e)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [dest, dest]
    assert dest.read_bytes() == body
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.onnx"]  # no leftovers

    class NoS3:
        def download_file(self, *args: object) -> None:
            raise AssertionError("a verified cached copy is not downloaded again")

    assert download_verified(NoS3(), version, dest) == dest  # same hash, other spelling
