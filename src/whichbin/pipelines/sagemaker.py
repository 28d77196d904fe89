"""The SageMaker Pipelines definition of the pipeline, built with the SageMaker Python SDK v3
(``pip install 'whichbin[sagemaker]'``) from the same pipeline config as the local engine.

Steps, each running ``whichbin pipeline step ...`` in the one image built from the repo's
``Dockerfile``::

    Prepare (processing) → Train (training) → Evaluate (processing, evaluation.json)
      → QualityGate (condition over evaluation.json)
          ├─ passed: Register (ModelStep: model package, ModelMetrics, lineage metadata)
          └─ failed: GateFailed (FailStep listing the failed conditions)

The SDK talks to AWS while it compiles a definition (it creates the default bucket, checks
the role, reads the region). ``definition_json(..., offline=True)`` compiles inside moto's
``mock_aws`` with an explicit role, bucket and region, so ``whichbin pipeline definition``
needs no account; ``upsert``/``start``/``status`` (``pipelines/sagemaker_runs.py``) use the
real one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from whichbin.config import PipelineConfig
from whichbin.errors import ConfigError
from whichbin.pipelines.sagemaker_steps import (
    StepContext,
    evaluate_step,
    evaluation_value,
    gate_step,
    parameters,
    prepare_step,
    train_step,
)
from whichbin.pipelines.steps import EVALUATION_FILE, config_settings

logger = logging.getLogger(__name__)

NO_TELEMETRY = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


@dataclass
class SagemakerTarget:
    """Where and as whom the pipeline runs (``WHICHBIN_SAGEMAKER_*`` variables or flags)."""

    role: str = field(default_factory=lambda: os.environ.get("WHICHBIN_SAGEMAKER_ROLE", ""))
    bucket: str = field(default_factory=lambda: os.environ.get("WHICHBIN_SAGEMAKER_BUCKET", ""))
    image_uri: str = field(default_factory=lambda: os.environ.get("WHICHBIN_SAGEMAKER_IMAGE", ""))
    region: str = field(
        default_factory=lambda: (
            os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
    )
    prefix: str = "whichbin"
    pipeline_name: str = "whichbin"
    processing_instance: str = "ml.m5.xlarge"
    training_instance: str = "ml.m5.xlarge"

    def check(self) -> SagemakerTarget:
        """Raise a one-line ConfigError naming the missing setting."""
        for name, env in (
            ("role", "WHICHBIN_SAGEMAKER_ROLE"),
            ("bucket", "WHICHBIN_SAGEMAKER_BUCKET"),
            ("image_uri", "WHICHBIN_SAGEMAKER_IMAGE"),
        ):
            if not getattr(self, name):
                flag = "--" + name.replace("_", "-").replace("-uri", "")
                raise ConfigError(f"SageMaker {name} not set: pass {flag} or set {env}")
        return self

    def s3(self, *parts: str) -> str:
        return "/".join(
            [f"s3://{self.bucket}", self.prefix, "pipelines", self.pipeline_name, *parts]
        )


@contextmanager
def _offline(region: str) -> Iterator[None]:
    """moto's mock_aws with throwaway credentials: the SDK's calls while compiling stay local."""
    from moto import mock_aws

    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "offline",
            "AWS_SECRET_ACCESS_KEY": "offline",
            "AWS_DEFAULT_REGION": region,
            "SAGEMAKER_VALIDATE_ROLE": "false",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _sdk() -> Any:
    try:
        import sagemaker.mlops.workflow as workflow
    except ImportError as e:
        raise ConfigError(
            "the SageMaker engine needs the SageMaker Python SDK: pip install 'whichbin[sagemaker]'"
        ) from e
    return workflow


def build_pipeline(cfg: PipelineConfig, target: SagemakerTarget, session: Any = None) -> Any:
    """The ``Pipeline`` object (SDK v3). Call inside ``_offline`` or with AWS credentials."""
    from sagemaker.core.workflow.properties import PropertyFile

    b = _context(cfg, target, session)
    prepare = prepare_step(b)
    work_uri = prepare.properties.ProcessingOutputConfig.Outputs["work"].S3Output.S3Uri
    train = train_step(b, cfg, work_uri)
    model_uri = train.properties.ModelArtifacts.S3ModelArtifacts
    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path=EVALUATION_FILE)
    evaluate = evaluate_step(b, work_uri, model_uri, evaluation)
    gate = gate_step(b, model_uri, evaluation_value(evaluate, evaluation))
    return b.wf.Pipeline(
        name=target.pipeline_name,
        parameters=b.params.all(),
        steps=[prepare, train, evaluate, gate],
        sagemaker_session=b.session,
    )


def _context(cfg: PipelineConfig, target: SagemakerTarget, session: Any) -> StepContext:
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    wf = _sdk()
    target.check()
    session = session or PipelineSession(
        boto_session=boto3.Session(region_name=target.region),
        default_bucket=target.bucket,
        sagemaker_config=NO_TELEMETRY,
    )
    return StepContext(
        wf=wf,
        target=target,
        session=session,
        params=parameters(cfg, target),
        cache=wf.CacheConfig(enable_caching=True, expire_after="P30D"),
        settings=[a for k, v in config_settings(cfg).items() for a in ("--set", f"{k}={v}")],
    )


def definition_json(cfg: PipelineConfig, target: SagemakerTarget, offline: bool = True) -> str:
    """The pipeline definition (JSON, indented). ``offline``: no AWS call (moto)."""
    target.check()
    if not offline:
        os.environ.setdefault("AWS_DEFAULT_REGION", target.region)  # the SDK reads it on import
        return _pretty(build_pipeline(cfg, target).definition())
    with _offline(target.region):
        return _pretty(build_pipeline(cfg, target).definition())


def _pretty(definition: str) -> str:
    return json.dumps(json.loads(definition), indent=1, sort_keys=True)
