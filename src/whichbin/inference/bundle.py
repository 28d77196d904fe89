"""The model bundle's metadata (SPEC "Model bundle"): read and write ONNX properties.

No torch here: the edge and the Pi read bundles with onnx/onnxruntime only.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from whichbin.contract import iso, utc_now
from whichbin.errors import ModelError, validation_message
from whichbin.inference.preprocess import PreprocessSpec

PREFIX = "whichbin."
DEFAULT_MODEL_FILE = "default_model.onnx"


def default_model_path() -> Path:
    """The bundled default model shipped inside the package."""
    return Path(str(resources.files("whichbin.resources").joinpath(DEFAULT_MODEL_FILE)))


class BundleMeta(BaseModel):
    """Everything a runtime needs to use a bundle, stored in its ONNX metadata."""

    model_config = ConfigDict(extra="forbid")
    labels: list[str]
    bins: dict[str, str] = Field(description="label → bin (the rule pack)")
    preprocess: PreprocessSpec = Field(default_factory=PreprocessSpec)
    temperature: float = 1.0
    version: str = "unregistered"
    metrics: dict[str, Any] = Field(default_factory=dict)
    created: str = ""
    rules: dict[str, Any] = Field(
        default_factory=dict, description="rule pack name, version, threshold (extension)"
    )
    backbone: str = ""
    attribution: str = Field("", description="Data the model was trained on and its licences")

    @field_validator("bins")
    @classmethod
    def _bins_cover_labels(cls, bins: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        missing = [lab for lab in info.data.get("labels", []) if lab not in bins]
        if missing:
            raise ValueError(f"no bin for label(s) {', '.join(missing)}")
        return bins

    def to_props(self) -> dict[str, str]:
        """ONNX metadata_props (all strings)."""
        out: dict[str, str] = {}
        for key, value in self.model_dump(mode="json").items():
            out[PREFIX + key] = value if isinstance(value, str) else json.dumps(value)
        return out

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> BundleMeta:
        """Parse metadata_props; raises ModelError naming the file and property."""
        data: dict[str, Any] = {}
        for key in cls.model_fields:
            raw = props.get(PREFIX + key)
            if raw is None:
                continue
            if key in ("version", "created", "backbone", "attribution"):
                data[key] = raw
                continue
            try:
                data[key] = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ModelError(f"{source}: metadata {PREFIX}{key} is not JSON: {e}") from e
        for required in ("labels", "bins"):
            if required not in data:
                raise ModelError(f"{source}: not a whichbin bundle (no {PREFIX}{required})")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            problem = validation_message(e, prefix=(PREFIX.rstrip("."),))
            raise ModelError(f"{source}: metadata {problem}") from e

    @property
    def threshold(self) -> float:
        return float(self.rules.get("threshold", 0.6))


def write_meta(onnx_path: Path, meta: BundleMeta) -> None:
    """Replace the whichbin.* metadata of an ONNX file in place."""
    import onnx

    model = onnx.load(str(onnx_path))
    keep = [p for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in meta.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(onnx_path))


def read_meta(onnx_path: Path) -> BundleMeta:
    """Read the whichbin.* metadata of an ONNX file without loading its weights."""
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and friends
        raise ModelError(f"{path}: not a readable ONNX file ({e.__class__.__name__})") from e
    props = {p.key: p.value for p in model.metadata_props}
    return BundleMeta.from_props(props, source=str(path))


def now_iso() -> str:
    """Creation timestamp for bundles."""
    return iso(utc_now())
