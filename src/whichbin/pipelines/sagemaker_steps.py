"""The SageMaker pipeline's parts, one function each: its parameters, the Prepare and
Evaluate processing jobs, the Train job, and the QualityGate condition with its Register
ModelStep and GateFailed FailStep. ``pipelines/sagemaker.py`` puts them together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from whichbin.config import PipelineConfig
from whichbin.pipelines.steps import config_settings

if TYPE_CHECKING:
    from whichbin.pipelines.sagemaker import SagemakerTarget

PROCESSING = "/opt/ml/processing"
STEP_ENTRY = ["whichbin", "pipeline", "step"]  # the Dockerfile's ENTRYPOINT, too


@dataclass
class Parameters:
    """The pipeline's parameters: defaults from the config and target, overridable per run."""

    image: Any
    data: Any
    processing: Any
    training: Any
    group: Any
    approval: Any
    min_accuracy: Any
    min_f1: Any
    tolerance: Any
    min_recall: dict[str, Any]  # bin → its MinRecall<Bin> parameter

    def all(self) -> list[Any]:
        return [
            self.image,
            self.data,
            self.processing,
            self.training,
            self.group,
            self.approval,
            self.min_accuracy,
            self.min_f1,
            self.tolerance,
            *self.min_recall.values(),
        ]


@dataclass
class StepContext:
    """What every step shares: the SDK's workflow module, target, session and parameters."""

    wf: Any
    target: SagemakerTarget
    session: Any
    params: Parameters
    cache: Any  # unchanged steps are cache hits
    settings: list[str]  # the pipeline config as ``--set KEY=VALUE`` arguments


def parameters(cfg: PipelineConfig, target: SagemakerTarget) -> Parameters:
    """Each default from the target or the gate config; one MinRecall<Bin> per gated bin."""
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString

    gate = cfg.gate
    return Parameters(
        image=ParameterString("ImageUri", default_value=target.image_uri),
        data=ParameterString(
            "InputDataUri", default_value=f"s3://{target.bucket}/{target.prefix}/data"
        ),
        processing=ParameterString(
            "ProcessingInstanceType", default_value=target.processing_instance
        ),
        training=ParameterString("TrainingInstanceType", default_value=target.training_instance),
        group=ParameterString("ModelPackageGroupName", default_value=cfg.registry.model_name),
        approval=ParameterString("ModelApprovalStatus", default_value="PendingManualApproval"),
        min_accuracy=ParameterFloat("MinBinAccuracy", default_value=gate.min_bin_accuracy),
        min_f1=ParameterFloat("MinMacroF1", default_value=gate.min_macro_f1),
        tolerance=ParameterFloat("Tolerance", default_value=gate.tolerance),
        min_recall={
            b: ParameterFloat(
                f"MinRecall{b.title().replace('-', '').replace('_', '')}", default_value=v
            )
            for b, v in sorted(gate.min_bin_recall.items())
        },
    )


def _processing_step(
    b: StepContext, step: str, does: str, inputs: list, outputs: list, arguments: list, **extra: Any
) -> Any:
    """``whichbin pipeline step STEP ARGUMENTS --set ...`` as a cached processing job."""
    from sagemaker.core.processing import Processor

    processor = Processor(
        role=b.target.role,
        image_uri=b.params.image,
        instance_count=1,
        instance_type=b.params.processing,
        entrypoint=[*STEP_ENTRY, step],
        base_job_name=f"whichbin-{step}",
        sagemaker_session=b.session,
        env={"PYTHONUNBUFFERED": "1"},
    )
    return b.wf.ProcessingStep(
        name=step.title(),
        description=f"{does} (whichbin pipeline step {step})",
        step_args=processor.run(
            inputs=inputs, outputs=outputs, arguments=[*arguments, *b.settings]
        ),
        cache_config=b.cache,
        **extra,
    )


def _s3_in(name: str, uri: Any, path: str) -> Any:
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=path, s3_data_type="S3Prefix", s3_input_mode="File"
        ),
    )


def _s3_out(target: SagemakerTarget, name: str, path: str, step: str) -> Any:
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=target.s3(step, name), local_path=path, s3_upload_mode="EndOfJob"
        ),
    )


def prepare_step(b: StepContext) -> Any:
    """Prepare: the photos under InputDataUri in, the work folder (split, manifest) out."""
    return _processing_step(
        b,
        "prepare",
        "import, check, dedupe, split, manifest",
        inputs=[_s3_in("data", b.params.data, f"{PROCESSING}/input/data")],
        outputs=[_s3_out(b.target, "work", f"{PROCESSING}/work", "prepare")],
        arguments=["--data", f"{PROCESSING}/input/data", "--work", f"{PROCESSING}/work"],
    )


def train_step(b: StepContext, cfg: PipelineConfig, work_uri: Any) -> Any:
    """Train: a training job on Prepare's work folder; its hyperparameters are the config."""
    from sagemaker.core.shapes import OutputDataConfig
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.train.model_trainer import ModelTrainer

    trainer = ModelTrainer(
        training_image=b.params.image,
        role=b.target.role,
        base_job_name="whichbin-train",
        compute=Compute(instance_type=b.params.training, instance_count=1, volume_size_in_gb=30),
        hyperparameters=config_settings(cfg),
        output_data_config=OutputDataConfig(s3_output_path=b.target.s3("train")),
        sagemaker_session=b.session,
    )
    return b.wf.TrainingStep(
        name="Train",
        description=f"training.mode {cfg.training.mode} (whichbin pipeline step train)",
        step_args=trainer.train(
            input_data_config=[InputData(channel_name="work", data_source=work_uri)]
        ),
        cache_config=b.cache,
    )


def evaluate_step(b: StepContext, work_uri: Any, model_uri: Any, evaluation: Any) -> Any:
    """Evaluate: the test split, the gate's values and thresholds, into evaluation.json."""
    from sagemaker.core.workflow.functions import Join

    p, t = b.params, b.target
    registry = Join(
        on="", values=["sagemaker://", p.group, f"?bucket={t.bucket}&prefix={t.prefix}"]
    )
    recall_args = [
        a
        for bin_, q in p.min_recall.items()
        for a in ("--min-recall", Join(on="=", values=[bin_, q]))
    ]
    return _processing_step(
        b,
        "evaluate",
        "test split, gate values, candidate staged",
        inputs=[
            _s3_in("work", work_uri, f"{PROCESSING}/work"),
            _s3_in("model", model_uri, f"{PROCESSING}/model"),
        ],
        outputs=[_s3_out(t, "evaluation", f"{PROCESSING}/evaluation", "evaluate")],
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
            p.group,
            "--min-bin-accuracy",
            p.min_accuracy,
            "--min-macro-f1",
            p.min_f1,
            "--tolerance",
            p.tolerance,
            *recall_args,
        ],  # fmt: skip
        property_files=[evaluation],
    )


def evaluation_value(evaluate: Any, evaluation: Any) -> Callable[[str], Any]:
    """A reader of evaluation.json's fields, resolved when the pipeline runs."""
    from sagemaker.core.workflow.functions import JsonGet

    def value(path: str) -> Any:
        return JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=path)

    return value


def gate_step(b: StepContext, model_uri: Any, value: Callable[[str], Any]) -> Any:
    """The quality gate: Register when every condition holds, else the GateFailed FailStep."""
    from sagemaker.core.workflow.functions import Join

    conditions = _gate_conditions(b.params, value)
    register = _register_step(b, model_uri, value)
    failed = b.wf.FailStep(
        name="GateFailed",
        error_message=Join(on="", values=["quality gate failed: ", value("gate.summary")]),
    )
    return b.wf.ConditionStep(
        name="QualityGate", conditions=conditions, if_steps=[register], else_steps=[failed]
    )


def _gate_conditions(p: Parameters, value: Callable[[str], Any]) -> list[Any]:
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo as AtLeast

    return [
        AtLeast(left=value("gate.values.bin_accuracy"), right=p.min_accuracy),
        AtLeast(left=value("gate.values.macro_f1"), right=p.min_f1),
        *[
            AtLeast(left=value(f"gate.values.recall_{bin_}"), right=q)
            for bin_, q in p.min_recall.items()
        ],
        AtLeast(left=value("gate.values.vs_approved"), right=value("gate.values.approved_floor")),
    ]


def _register_step(b: StepContext, model_uri: Any, value: Callable[[str], Any]) -> Any:
    """The model package: metrics, lineage and gate from evaluation.json; approval deploys."""
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.serve.model_builder import ModelBuilder

    builder = ModelBuilder(
        image_uri=b.params.image,
        s3_model_data_url=model_uri,
        role_arn=b.target.role,
        sagemaker_session=b.session,
    )
    instances = [b.target.processing_instance]
    return b.wf.ModelStep(
        name="Register",
        description="model package with ModelMetrics and lineage; approval deploys the fleet",
        step_args=builder.register(
            model_package_group_name=b.params.group,
            approval_status=b.params.approval,
            content_types=["image/jpeg", "image/png"],
            response_types=["application/json"],
            inference_instances=instances,
            transform_instances=instances,
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
