"""Runs a SageMaker Pipelines definition locally, the way SageMaker would: each job's
container entry point and arguments come from the definition JSON, S3 is moto's (inputs
are downloaded to the container paths, outputs uploaded after the job), ``/opt/ml`` is a
folder, and ``whichbin`` is this checkout's (``python -m whichbin``: the same entry point
the image's console script runs)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def dockerfile_entrypoint(dockerfile: Path) -> list[str]:
    """The image's ENTRYPOINT (exec form), which a training job runs with ``train``."""
    for line in dockerfile.read_text().splitlines():
        if line.startswith("ENTRYPOINT"):
            return list(json.loads(line.removeprefix("ENTRYPOINT").strip()))
    raise AssertionError(f"{dockerfile}: no ENTRYPOINT")


class LocalSagemaker:
    """Executes a definition's steps in order; ``s3`` and ``sm`` are boto3 clients (moto)."""

    def __init__(self, definition: dict, root: Path, s3: Any, sm: Any, entrypoint: list[str]):
        self.definition, self.root, self.s3, self.sm = definition, root, s3, sm
        self.entrypoint = entrypoint
        self.params: dict[str, Any] = {}
        self.properties: dict[str, Any] = {}  # "Steps.<name>.<path>" → value
        self.property_files: dict[str, Any] = {}  # "<step>.<file>" → parsed JSON
        self.ran: list[str] = []
        self.failed: str | None = None
        self.commands: list[list[str]] = []

    # -- expressions ---------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            path = value["Get"]
            if path.startswith("Parameters."):
                return self.params[path.removeprefix("Parameters.")]
            return self.properties[path]
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return join["On"].join(str(self.resolve(v)) for v in join["Values"])
        if set(value) == {"Std:JsonGet"}:
            get = value["Std:JsonGet"]
            step_file = get["PropertyFile"]["Get"].removeprefix("Steps.")
            node = self.property_files[step_file.replace(".PropertyFiles.", ".")]
            for part in get["Path"].split("."):
                node = node[part]
            return node
        return {k: self.resolve(v) for k, v in value.items()}

    def container_path(self, path: str) -> str:
        return str(self.root / path.lstrip("/")) if path.startswith("/opt/ml") else path

    # -- S3 ----------------------------------------------------------------------------------
    def download(self, uri: str, dest: Path) -> None:
        parsed = urlparse(uri)
        prefix = parsed.path.lstrip("/")
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=parsed.netloc, Prefix=prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) :].lstrip("/") or Path(obj["Key"]).name
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(parsed.netloc, obj["Key"], str(target))

    def upload(self, src: Path, uri: str) -> None:
        parsed = urlparse(uri)
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            key = f"{parsed.path.strip('/')}/{f.relative_to(src).as_posix()}"
            self.s3.upload_file(str(f), parsed.netloc, key)

    # -- steps ----------------------------------------------------------------------------------
    def run(self, parameters: dict[str, Any] | None = None) -> LocalSagemaker:
        self.params = {p["Name"]: p.get("DefaultValue") for p in self.definition["Parameters"]}
        self.params.update(parameters or {})
        self.steps(self.definition["Steps"])
        return self

    def steps(self, steps: list[dict]) -> None:
        for step in steps:
            if self.failed:
                return
            getattr(self, "step_" + step["Type"].lower())(step)
            self.ran.append(step["Name"])

    def exec(self, argv: list[str], env: dict[str, str]) -> None:
        argv = [self.container_path(str(a)) for a in argv]
        if argv[0] == "whichbin":
            argv = [sys.executable, "-m", "whichbin", *argv[1:]]
        self.commands.append(argv)
        done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True)
        assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stderr[-3000:]}"

    def step_processing(self, step: dict) -> None:
        args = self.resolve(step["Arguments"])
        for inp in args.get("ProcessingInputs", []):
            s3in = inp["S3Input"]
            self.download(s3in["S3Uri"], Path(self.container_path(s3in["LocalPath"])))
        outputs = args["ProcessingOutputConfig"]["Outputs"]
        for out in outputs:
            Path(self.container_path(out["S3Output"]["LocalPath"])).mkdir(
                parents=True, exist_ok=True
            )
        app = args["AppSpecification"]
        self.exec(
            app["ContainerEntrypoint"] + app.get("ContainerArguments", []),
            args.get("Environment", {}),
        )
        for out in outputs:
            local = Path(self.container_path(out["S3Output"]["LocalPath"]))
            self.upload(local, out["S3Output"]["S3Uri"])
            path = f"ProcessingOutputConfig.Outputs['{out['OutputName']}'].S3Output.S3Uri"
            self.properties[f"Steps.{step['Name']}.{path}"] = out["S3Output"]["S3Uri"]
            for pf in step.get("PropertyFiles", []):
                if pf["OutputName"] == out["OutputName"]:
                    doc = json.loads((local / pf["FilePath"]).read_text())
                    self.property_files[f"{step['Name']}.{pf['PropertyFileName']}"] = doc

    def step_training(self, step: dict) -> None:
        args = self.resolve(step["Arguments"])
        ml = self.root / "opt" / "ml"
        (ml / "input" / "config").mkdir(parents=True, exist_ok=True)
        (ml / "input" / "config" / "hyperparameters.json").write_text(
            json.dumps(args.get("HyperParameters", {}))
        )
        for channel in args.get("InputDataConfig", []):
            uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
            self.download(uri, ml / "input" / "data" / channel["ChannelName"])
        (ml / "model").mkdir(parents=True, exist_ok=True)
        self.exec(
            [*self.entrypoint, "train"], {"WHICHBIN_OPT_ML": str(ml), **args.get("Environment", {})}
        )
        tar_path = self.root / "model.tar.gz"
        with tarfile.open(tar_path, "w:gz") as tar:
            for f in sorted((ml / "model").rglob("*")):
                tar.add(f, arcname=f.relative_to(ml / "model").as_posix(), recursive=False)
        uri = f"{args['OutputDataConfig']['S3OutputPath'].rstrip('/')}/job/output/model.tar.gz"
        parsed = urlparse(uri)
        self.s3.upload_file(str(tar_path), parsed.netloc, parsed.path.lstrip("/"))
        self.properties[f"Steps.{step['Name']}.ModelArtifacts.S3ModelArtifacts"] = uri

    def step_condition(self, step: dict) -> None:
        ok = True
        for cond in step["Arguments"]["Conditions"]:
            assert cond["Type"] == "GreaterThanOrEqualTo", cond["Type"]
            left, right = self.resolve(cond["LeftValue"]), self.resolve(cond["RightValue"])
            ok = ok and float(left) >= float(right)
        self.steps(step["Arguments"]["IfSteps" if ok else "ElseSteps"])

    def step_registermodel(self, step: dict) -> None:
        args = self.resolve(step["Arguments"])
        self.properties[f"Steps.{step['Name']}.ModelPackageArn"] = self.sm.create_model_package(
            **args
        )["ModelPackageArn"]

    def step_fail(self, step: dict) -> None:
        self.failed = str(self.resolve(step["Arguments"]["ErrorMessage"]))


__all__ = ["LocalSagemaker", "dockerfile_entrypoint", "re"]
