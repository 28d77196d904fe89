"""``whichbin pipeline step prepare|train|evaluate`` (what each SageMaker job runs) and
``whichbin pipeline definition|upsert|start|status --engine sagemaker``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from whichbin.cli.options import ConfigOpt, JsonOpt, load_config, option_group
from whichbin.cli.output import emit_json
from whichbin.registry.sagemaker_records import aws_errors

step_app = typer.Typer(
    help="One pipeline step, as a SageMaker job runs it (paths default to /opt/ml).\n\n"
    "Example: whichbin pipeline step prepare --data photos/ --work work/",
    no_args_is_help=True,
)

SetOpt = typer.Option(
    [], "--set", help="Pipeline setting KEY=VALUE (YAML value), e.g. training.mode=partial"
)
EngineOpt = typer.Option("sagemaker", "--engine", help="Only sagemaker has a definition")
RoleOpt = typer.Option(None, "--role", help="Execution role ARN (default: WHICHBIN_SAGEMAKER_ROLE)")
BucketOpt = typer.Option(None, "--bucket", help="S3 bucket (default: WHICHBIN_SAGEMAKER_BUCKET)")
ImageOpt = typer.Option(None, "--image", help="ECR image URI (default: WHICHBIN_SAGEMAKER_IMAGE)")
RegionOpt = typer.Option(None, "--region", help="AWS region (default: AWS_REGION)")
NameOpt = typer.Option("whichbin", "--name", help="Pipeline name")


def _config(config: Path | None, settings: list[str]) -> Any:
    from whichbin.config import load_settings
    from whichbin.pipelines.steps import config_from_settings, config_settings

    base = config_settings(load_settings(config).pipeline) if config else {}
    return config_from_settings([f"{k}={v}" for k, v in base.items()] + list(settings))


@step_app.command("prepare")
def prepare_cmd(
    data: list[Path] = typer.Option(..., "--data", "-d", help="Image folder, .lst or .csv"),
    work: Path = typer.Option(None, "--work", help="Work dir (default: /opt/ml/processing/work)"),
    config: ConfigOpt = None,
    settings: list[str] = SetOpt,
) -> None:
    """Import, check, dedupe and split the data into WORK/dataset, with its manifest.

    Example: whichbin pipeline step prepare --data photos/ --work work/
    """
    from whichbin.pipelines import steps

    out = steps.prepare(_config(config, settings), data, work or Path("/opt/ml/processing/work"))
    emit_json(out)


@step_app.command("train")
def train_cmd(
    work: Path = typer.Option(
        None, "--work", help="Prepared work dir (default: /opt/ml/input/data/work)"
    ),
    model_dir: Path = typer.Option(None, "--model-dir", help="Output (default: /opt/ml/model)"),
    config: ConfigOpt = None,
    settings: list[str] = SetOpt,
) -> None:
    """Train (head-only or fine-tuning, as configured) on a prepared work dir.

    In a SageMaker training job it takes its settings from the hyperparameters.

    Example: whichbin pipeline step train --work work/ --model-dir model/
    """
    from whichbin.pipelines import steps

    root = steps.opt_ml()
    hp_file = root / "input" / "config" / "hyperparameters.json"
    if not settings and config is None and hp_file.is_file():
        settings = [f"{k}={v}" for k, v in json.loads(hp_file.read_text()).items()]
    cfg = _config(config, settings)
    out = steps.train(cfg, work or root / "input" / "data" / "work", model_dir or root / "model")
    emit_json(out)


@step_app.command("evaluate")
def evaluate_cmd(
    work: Path = typer.Option(..., "--work", help="The prepare step's work dir"),
    model: Path = typer.Option(..., "--model", help="The train step's model.tar.gz (or folder)"),
    out: Path = typer.Option(..., "--out", help="Writes evaluation.json and report/ here"),
    registry: str = typer.Option(..., "--registry", help="sagemaker://GROUP?bucket=B&prefix=P"),
    model_name: str = typer.Option(None, "--model-name", help="Model package group"),
    min_bin_accuracy: float = typer.Option(None, "--min-bin-accuracy", help="Gate override"),
    min_macro_f1: float = typer.Option(None, "--min-macro-f1", help="Gate override"),
    min_recall: list[str] = typer.Option([], "--min-recall", help="BIN=F gate override"),
    tolerance: float = typer.Option(None, "--tolerance", help="Gate override"),
    config: ConfigOpt = None,
    settings: list[str] = SetOpt,
) -> None:
    """Evaluate the candidate, gate it against the approved version and stage it for
    registration; writes the pipeline's property file evaluation.json.

    Example: whichbin pipeline step evaluate --work work/ --model model/ --out eval/
    --registry "sagemaker://trash-classifier?bucket=my-bucket"
    """
    from whichbin.errors import ConfigError
    from whichbin.pipelines import steps
    from whichbin.registry import open_registry

    cfg = _config(config, settings)
    recalls: dict[str, float] = {}
    for item in min_recall:
        b, _, v = item.partition("=")
        try:
            recalls[b] = float(v)
        except ValueError as e:
            raise ConfigError(f"--min-recall {item!r}: expected BIN=NUMBER") from e
    cfg = steps.with_gate(cfg, min_bin_accuracy, min_macro_f1, recalls, tolerance)
    if model_name:
        cfg.registry.model_name = model_name
    doc = steps.evaluate(cfg, work, model, open_registry(registry, cfg.registry.model_name), out)
    emit_json(doc)


def _target(
    engine: str,
    role: str | None = None,
    bucket: str | None = None,
    image: str | None = None,
    region: str | None = None,
    name: str = "whichbin",
) -> Any:
    """The SageMaker target the flags name (after checking the engine has one)."""
    from whichbin.errors import ConfigError
    from whichbin.pipelines.sagemaker import SagemakerTarget

    if engine != "sagemaker":
        raise ConfigError(
            f"--engine {engine}: only the sagemaker engine has a definition; "
            "the local engine runs with `whichbin pipeline run`"
        )
    t = SagemakerTarget(pipeline_name=name)
    for key, value in (
        ("role", role),
        ("bucket", bucket),
        ("image_uri", image),
        ("region", region),
    ):
        if value:
            setattr(t, key, value)
    return t


_CREATE = {"role": (str, RoleOpt), "bucket": (str, BucketOpt), "image": (str, ImageOpt)}
_WHERE = {"region": (str, RegionOpt), "name": (str, NameOpt)}
# The command receives ``target``, a SagemakerTarget: --engine, --region and --name say
# where an existing pipeline runs (start, status); definition and upsert also take --role,
# --bucket and --image, what creating it needs.
pipeline_options = option_group("target", {"engine": (str, EngineOpt), **_WHERE}, _target)
target_options = option_group("target", {"engine": (str, EngineOpt), **_CREATE, **_WHERE}, _target)


@target_options
def definition_cmd(
    config: ConfigOpt = None,
    target: Any = None,
    online: bool = typer.Option(False, "--online", help="Compile against the real account"),
) -> None:
    """Print the SageMaker Pipelines definition (JSON), compiled offline (no AWS call).

    Role, bucket and image come from --role/--bucket/--image or WHICHBIN_SAGEMAKER_ROLE,
    WHICHBIN_SAGEMAKER_BUCKET and WHICHBIN_SAGEMAKER_IMAGE.

    Example: whichbin pipeline definition --engine sagemaker --bucket my-bucket
    --role arn:aws:iam::123456789012:role/whichbin --image ECR_URI
    """
    from whichbin.config import load_settings
    from whichbin.pipelines.sagemaker import definition_json

    cfg = load_settings(config).pipeline
    with aws_errors("SageMaker pipeline definition"):
        typer.echo(definition_json(cfg, target, offline=not online))


@target_options
def upsert_cmd(config: ConfigOpt = None, target: Any = None, as_json: JsonOpt = False) -> None:
    """Create or update the pipeline in your AWS account.

    Example: whichbin pipeline upsert --engine sagemaker --config pipeline.yaml
    """
    from whichbin.config import load_settings
    from whichbin.pipelines.sagemaker_runs import upsert

    cfg = load_settings(config).pipeline
    with aws_errors("SageMaker pipeline upsert"):
        arn = upsert(cfg, target)
    if as_json:
        emit_json({"pipeline_arn": arn})
    else:
        typer.echo(f"pipeline upserted: {arn}")


@pipeline_options
def start_cmd(
    config: ConfigOpt = None,
    target: Any = None,
    parameter: list[str] = typer.Option([], "--parameter", "-p", help="NAME=VALUE, repeatable"),
    wait: bool = typer.Option(False, "--wait", help="Wait for the end; exit 3 if the gate failed"),
    poll: float = typer.Option(30.0, "--poll", min=1, help="--wait: seconds between checks"),
    as_json: JsonOpt = False,
) -> None:
    """Start an execution (unchanged steps are cache hits).

    With --wait: exit 0 when it succeeded, 3 when the quality gate failed, 1 otherwise.

    Example: whichbin pipeline start --engine sagemaker -p InputDataUri=s3://my-bucket/photos
    """
    import time

    from whichbin.errors import WhichbinError
    from whichbin.pipelines.sagemaker_runs import execution_outcome, start, status

    load_config(config)  # a broken config fails here, as in every command
    params = dict(p.partition("=")[::2] for p in parameter)
    with aws_errors("SageMaker pipeline start"):
        arn = start(target, params)
        doc: dict[str, Any] = {"execution_arn": arn}
        if wait:
            while (doc := status(target, arn))["status"] in ("Executing", "Stopping", None):
                time.sleep(poll)
    if as_json:
        emit_json(doc)
    else:
        typer.echo(f"execution {'ended' if wait else 'started'}: {arn} {doc.get('status', '')}")
    if wait:
        outcome = execution_outcome(doc)
        if outcome == "gate_failed":
            raise typer.Exit(3)
        if outcome != "succeeded":
            raise WhichbinError(f"pipeline execution {arn}: {doc['status']}: {doc.get('failure')}")


@pipeline_options
def status_cmd(
    config: ConfigOpt = None,
    target: Any = None,
    execution: str = typer.Option(None, "--execution", help="Execution ARN (default: latest)"),
    as_json: JsonOpt = False,
) -> None:
    """Show the latest execution and its steps.

    Example: whichbin pipeline status --engine sagemaker --json
    """
    from whichbin.pipelines.sagemaker_runs import status

    load_config(config)
    with aws_errors("SageMaker pipeline status"):
        doc = status(target, execution)
    if as_json:
        emit_json(doc)
        return
    typer.echo(f"{doc['pipeline']}: {doc['status'] or 'never run'} {doc['execution'] or ''}")
    for s in doc["steps"]:
        cached = " (cached)" if s["cached"] else ""
        typer.echo(f"  {s['name']:<12} {s['status']}{cached} {s['failure'] or ''}".rstrip())


def register(pipeline_app: typer.Typer) -> None:
    """Add these commands to ``whichbin pipeline``."""
    pipeline_app.add_typer(step_app, name="step")
    for name, fn in (
        ("definition", definition_cmd),
        ("upsert", upsert_cmd),
        ("start", start_cmd),
        ("status", status_cmd),
    ):
        pipeline_app.command(name)(fn)
