"""The SageMaker pipeline in the account: create or update it, start an execution, read its
status and outcome. The definition itself is built in ``pipelines/sagemaker.py``; every AWS
refusal here is a one-line RegistryError naming what was attempted.
"""

from __future__ import annotations

import os
from typing import Any

from whichbin.config import PipelineConfig
from whichbin.errors import RegistryError
from whichbin.pipelines.sagemaker import SagemakerTarget, build_pipeline


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
