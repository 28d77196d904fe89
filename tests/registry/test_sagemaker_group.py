"""``SagemakerRegistry.ensure_group``: public, since the pipeline upsert calls it."""

from __future__ import annotations

import pytest

moto = pytest.importorskip("moto", reason="needs moto for the mocked SageMaker registry")
boto3 = pytest.importorskip("boto3", reason="needs boto3 (the [aws] extra)")


def test_ensure_group_creates_the_group_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from whichbin.registry.sagemaker import SagemakerRegistry

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        reg = SagemakerRegistry("trash-classifier", "models", "wb")
        reg.ensure_group("trash-classifier")
        reg.ensure_group("trash-classifier")  # already there: no error
        groups = boto3.client("sagemaker").list_model_package_groups()
        names = [g["ModelPackageGroupName"] for g in groups["ModelPackageGroupSummaryList"]]
        assert names == ["trash-classifier"]
