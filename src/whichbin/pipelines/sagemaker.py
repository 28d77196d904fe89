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
needs no account; ``upsert``/``start``/``status`` use the real one.
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
from whichbin.errors import ConfigError, RegistryError
from whichbin.pipelines.steps import EVALUATION_FILE, config_settings

logger = logging.getLogger(__name__)

PROCESSING = "/opt/ml/processing"
STEP_ENTRY = ["whichbin", "pipeline", "step"]  # the Dockerfile's ENTRYPOINT, too
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
    import boto3
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import (
        OutputDataConfig,
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train.model_trainer import ModelTrainer

    wf = _sdk()
    target.check()
    session = session or PipelineSession(
        boto_session=boto3.Session(region_name=target.region),
        default_bucket=target.bucket,
        sagemaker_config=NO_TELEMETRY,
    )
    gate = cfg.gate
    p_image = ParameterString("ImageUri", default_value=target.image_uri)
    p_data = ParameterString(
        "InputDataUri", default_value=f"s3://{target.bucket}/{target.prefix}/data"
    )
    p_proc = ParameterString("ProcessingInstanceType", default_value=target.processing_instance)
    p_train = ParameterString("TrainingInstanceType", default_value=target.training_instance)
    p_group = ParameterString("ModelPackageGroupName", default_value=cfg.registry.model_name)
    p_status = ParameterString("ModelApprovalStatus", default_value="PendingManualApproval")
    p_acc = ParameterFloat("MinBinAccuracy", default_value=gate.min_bin_accuracy)
    p_f1 = ParameterFloat("MinMacroF1", default_value=gate.min_macro_f1)
    p_tol = ParameterFloat("Tolerance", default_value=gate.tolerance)
    p_recall = {
        b: ParameterFloat(
            f"MinRecall{b.title().replace('-', '').replace('_', '')}", default_value=v
        )
        for b, v in sorted(gate.min_bin_recall.items())
    }
    params = [p_image, p_data, p_proc, p_train, p_group, p_status, p_acc, p_f1, p_tol]
    params += list(p_recall.values())
    cache = wf.CacheConfig(enable_caching=True, expire_after="P30D")
    settings = [a for k, v in config_settings(cfg).items() for a in ("--set", f"{k}={v}")]

    def processing_step(
        step: str, does: str, inputs: list, outputs: list, arguments: list, **extra: Any
    ) -> Any:
        """``whichbin pipeline step STEP ARGUMENTS --set ...`` as a cached processing job."""
        processor = Processor(
            role=target.role,
            image_uri=p_image,
            instance_count=1,
            instance_type=p_proc,
            entrypoint=[*STEP_ENTRY, step],
            base_job_name=f"whichbin-{step}",
            sagemaker_session=session,
            env={"PYTHONUNBUFFERED": "1"},
        )
        return wf.ProcessingStep(
            name=step.title(),
            description=f"{does} (whichbin pipeline step {step})",
            step_args=processor.run(
                inputs=inputs, outputs=outputs, arguments=[*arguments, *settings]
            ),
            cache_config=cache,
            **extra,
        )

    def s3_in(name: str, uri: Any, path: str) -> Any:
        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=uri, local_path=path, s3_data_type="S3Prefix", s3_input_mode="File"
            ),
        )

    def s3_out(name: str, path: str, step: str) -> Any:
        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(
                s3_uri=target.s3(step, name), local_path=path, s3_upload_mode="EndOfJob"
            ),
        )

    prepare = processing_step(
        "prepare",
        "import, check, dedupe, split, manifest",
        inputs=[s3_in("data", p_data, f"{PROCESSING}/input/data")],
        outputs=[s3_out("work", f"{PROCESSING}/work", "prepare")],
        arguments=["--data", f"{PROCESSING}/input/data", "--work", f"{PROCESSING}/work"],
    )
    trainer = ModelTrainer(
        training_image=p_image,
        role=target.role,
        base_job_name="whichbin-train",
        compute=Compute(instance_type=p_train, instance_count=1, volume_size_in_gb=30),
        hyperparameters=config_settings(cfg),
        output_data_config=OutputDataConfig(s3_output_path=target.s3("train")),
        sagemaker_session=session,
    )
    work_uri = prepare.properties.ProcessingOutputConfig.Outputs["work"].S3Output.S3Uri
    train = wf.TrainingStep(
        name="Train",
        description=f"training.mode {cfg.training.mode} (whichbin pipeline step train)",
        step_args=trainer.train(
            input_data_config=[InputData(channel_name="work", data_source=work_uri)]
        ),
        cache_config=cache,
    )
    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path=EVALUATION_FILE)
    registry = Join(
        on="", values=["sagemaker://", p_group, f"?bucket={target.bucket}&prefix={target.prefix}"]
    )
    recall_args = [
        a for b, p in p_recall.items() for a in ("--min-recall", Join(on="=", values=[b, p]))
    ]
    evaluate = processing_step(
        "evaluate",
        "test split, gate values, candidate staged",
        inputs=[
            s3_in("work", work_uri, f"{PROCESSING}/work"),
            s3_in("model", train.properties.ModelArtifacts.S3ModelArtifacts, f"{PROCESSING}/model"),
        ],
        outputs=[s3_out("evaluation", f"{PROCESSING}/evaluation", "evaluate")],
        arguments=[
            "--work",
            f"{PROCESSING}/work",
            "--model",
            f"{PROCESSING}/model",
            "--out",
            f"{PROCESSING}/evaluation",
            "--registry",
            registry,
            "--model-name",
            p_group,
            "--min-bin-accuracy",
            p_acc,
            "--min-macro-f1",
            p_f1,
            "--tolerance",
            p_tol,
            *recall_args,
        ],  # fmt: skip
        property_files=[evaluation],
    )

    def value(path: str) -> Any:
        return JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=path)

    conditions = [
        ConditionGreaterThanOrEqualTo(left=value("gate.values.bin_accuracy"), right=p_acc),
        ConditionGreaterThanOrEqualTo(left=value("gate.values.macro_f1"), right=p_f1),
        *[
            ConditionGreaterThanOrEqualTo(left=value(f"gate.values.recall_{b}"), right=p)
            for b, p in p_recall.items()
        ],
        ConditionGreaterThanOrEqualTo(
            left=value("gate.values.vs_approved"), right=value("gate.values.approved_floor")
        ),
    ]
    builder = ModelBuilder(
        image_uri=p_image,
        s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
        role_arn=target.role,
        sagemaker_session=session,
    )
    register = wf.ModelStep(
        name="Register",
        description="model package with ModelMetrics and lineage; approval deploys the fleet",
        step_args=builder.register(
            model_package_group_name=p_group,
            approval_status=p_status,
            content_types=["image/jpeg", "image/png"],
            response_types=["application/json"],
            inference_instances=[target.processing_instance],
            transform_instances=[target.processing_instance],
            description=value("package.description"),
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(
                    content_type="application/json", s3_uri=value("package.metrics")
                )
            ),
            customer_metadata_properties={
                "whichbin.registration": value("package.registration"),
                "whichbin.sha256": value("package.sha256"),
                "whichbin.gate": value("package.gate"),
                "whichbin.artifact": value("package.artifact"),
                "whichbin.manifest_hash": value("lineage.manifest_hash"),
                "whichbin.config_hash": value("lineage.config_hash"),
                "whichbin.code_version": value("lineage.code_version"),
            },
        ),
    )
    failed = wf.FailStep(
        name="GateFailed",
        error_message=Join(on="", values=["quality gate failed: ", value("gate.summary")]),
    )
    gate_step = wf.ConditionStep(
        name="QualityGate", conditions=conditions, if_steps=[register], else_steps=[failed]
    )
    return wf.Pipeline(
        name=target.pipeline_name,
        parameters=params,
        steps=[prepare, train, evaluate, gate_step],
        sagemaker_session=session,
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


def upsert(cfg: PipelineConfig, target: SagemakerTarget) -> str:
    """Create or update the pipeline in the account; returns its ARN."""
    os.environ.setdefault("AWS_DEFAULT_REGION", target.check().region)
    from whichbin.registry.sagemaker import SagemakerRegistry

    # The registration step needs its model package group to exist.
    SagemakerRegistry(cfg.registry.model_name, target.bucket, target.prefix)._ensure_group(
        cfg.registry.model_name
    )
    pipeline = build_pipeline(cfg, target)
    response = _aws("upsert the pipeline", lambda: pipeline.upsert(role_arn=target.role))
    return str(response.get("PipelineArn", ""))


def start(target: SagemakerTarget, parameters: dict[str, Any] | None = None) -> str:
    """Start an execution of the upserted pipeline; returns its ARN."""
    import boto3

    sm = boto3.client("sagemaker", region_name=target.region)
    args: dict[str, Any] = {"PipelineName": target.pipeline_name}
    if parameters:
        args["PipelineParameters"] = [{"Name": k, "Value": str(v)} for k, v in parameters.items()]
    return str(
        _aws("start the pipeline", lambda: sm.start_pipeline_execution(**args))[
            "PipelineExecutionArn"
        ]
    )


def status(target: SagemakerTarget, execution_arn: str | None = None) -> dict[str, Any]:
    """The latest (or the given) execution: its status and each step's."""
    import boto3

    sm = boto3.client("sagemaker", region_name=target.region)
    if execution_arn is None:
        found = _aws(
            "list executions",
            lambda: sm.list_pipeline_executions(PipelineName=target.pipeline_name, MaxResults=1),
        )["PipelineExecutionSummaries"]
        if not found:
            return {
                "pipeline": target.pipeline_name,
                "execution": None,
                "status": None,
                "steps": [],
            }
        execution_arn = found[0]["PipelineExecutionArn"]
    arn = execution_arn
    desc = _aws(
        "describe the execution", lambda: sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    )
    steps = _aws(
        "list the steps", lambda: sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)
    )
    return {
        "pipeline": target.pipeline_name,
        "execution": arn,
        "status": desc.get("PipelineExecutionStatus"),
        "failure": desc.get("FailureReason"),
        "steps": [
            {
                "name": s.get("StepName"),
                "status": s.get("StepStatus"),
                "cached": bool(s.get("CacheHitResult")),
                "failure": s.get("FailureReason"),
            }
            for s in steps.get("PipelineExecutionSteps", [])
        ],
    }


def execution_outcome(doc: dict[str, Any]) -> str:
    """``succeeded``, ``gate_failed`` (the FailStep ran) or ``failed``, from ``status``."""
    if doc.get("status") == "Succeeded":
        return "succeeded"
    if any(s["name"] == "GateFailed" for s in doc.get("steps", [])):
        return "gate_failed"
    return "failed"


def _aws(what: str, call: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as e:
        err = e.response.get("Error", {})
        raise RegistryError(f"SageMaker: {what}: {err.get('Code')}: {err.get('Message')}") from e
    except BotoCoreError as e:
        raise RegistryError(f"SageMaker: {what}: {e}") from e
