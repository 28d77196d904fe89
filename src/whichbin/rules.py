"""Rule packs: which bin each label goes in, and when to say "unsure". Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from whichbin.contract import DECIDED, UNSURE
from whichbin.errors import ConfigError, validation_message
from whichbin.textfile import load_yaml


class RulePack(BaseModel):
    """Label → bin mapping plus the confidence below which a decision is ``unsure``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field("recipe-default", description="Rule pack name, reported in events")
    version: str = Field("1", description="Rule pack version, reported in events")
    threshold: float = Field(0.6, ge=0.0, le=1.0, description="Minimum confidence to decide")
    bins: dict[str, list[str]] = Field(description="bin → labels that go in it")

    @field_validator("bins")
    @classmethod
    def _labels_once(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for b, labels in v.items():
            for label in labels:
                if label in seen and seen[label] != b:
                    raise ValueError(f"label {label!r} is in both {seen[label]!r} and {b!r}")
                seen[label] = b
        return v

    def label_to_bin(self) -> dict[str, str]:
        """Flattened label → bin mapping."""
        return {label: b for b, labels in self.bins.items() for label in labels}

    def bin_of(self, label: str) -> str:
        """Bin for a label; raises ConfigError naming the label when the pack has no rule.
        A bin's own name (a bin-only folder) is its bin."""
        if self.is_bin_only(label):
            return label
        mapping = self.label_to_bin()
        if label not in mapping:
            raise ConfigError(
                f"rule pack {self.name!r} has no bin for label {label!r}; add it under bins:"
            )
        return mapping[label]

    def is_bin_only(self, label: str) -> bool:
        """A folder named after a bin (``my-photos/compost/``, the edge's
        ``corrections/compost/``) holds bin-only examples: they say which bin, not which
        label, so they never become a label of their own."""
        return label in self.bins and label not in self.label_to_bin()

    def model_labels(self, labels: Sequence[str]) -> list[str]:
        """The labels a model learns: the dataset's labels less the bin-only folders. Each
        must have a rule (ConfigError naming the first that has none)."""
        out = [label for label in labels if not self.is_bin_only(label)]
        self.restricted_to(out)
        return out

    def restricted_to(self, labels: Sequence[str]) -> dict[str, str]:
        """label → bin for exactly these labels (every label must have a rule)."""
        return {label: self.bin_of(label) for label in labels}


def load_rules(path: Path | None = None) -> RulePack:
    """Load a rule pack from YAML, or the bundled default when ``path`` is None."""
    if path is None:
        text = resources.files("whichbin.resources").joinpath("default_rules.yaml").read_text()
        raw, source = yaml.safe_load(text), "default_rules.yaml"
    else:
        raw, source = load_yaml(path, "rule pack", ConfigError), str(path)
    try:
        return RulePack.model_validate(raw or {})
    except ValidationError as e:
        raise ConfigError(validation_message(e, f"{source}: invalid rule pack")) from e


def aggregate_bins(probs: Mapping[str, float], label_to_bin: Mapping[str, str]) -> dict[str, float]:
    """Sum label probabilities into bin probabilities."""
    out: dict[str, float] = {}
    for label, p in probs.items():
        b = label_to_bin[label]
        out[b] = out.get(b, 0.0) + float(p)
    return out


class Prediction(BaseModel):
    """One image's answer: the bin, the best label in it, calibrated confidence, decision."""

    bin: str
    label: str
    confidence: float
    decision: str  # "decided" or "unsure"
    top_k: list[dict[str, float | str]]
    probs: dict[str, float] = Field(default_factory=dict, exclude=True)
    familiarity: float | None = Field(None, exclude=True)


def unfamiliar(familiarity: float | None, floor: float | None) -> bool:
    """True when an image is less familiar than the model's floor (evaluation/openset.py);
    False when either is unknown (a bundle without the score)."""
    return familiarity is not None and floor is not None and familiarity < floor


def predict_from_probs(
    probs: Sequence[float],
    labels: Sequence[str],
    label_to_bin: Mapping[str, str],
    threshold: float,
    k: int = 3,
    familiarity: float | None = None,
    min_familiarity: float | None = None,
) -> Prediction:
    """Calibrated label probabilities → bin decision.

    The bin is the one with the largest summed probability (what the user acts on);
    its confidence is that sum; below ``threshold`` the decision is ``unsure``, and so it is
    when the image is less familiar than ``min_familiarity`` (unlike anything in training:
    evaluation/openset.py), however confident the softmax is.
    """
    by_label = {label: float(p) for label, p in zip(labels, probs, strict=True)}
    by_bin = aggregate_bins(by_label, label_to_bin)
    best_bin = max(by_bin, key=lambda b: by_bin[b])
    in_bin = [lab for lab in labels if label_to_bin[lab] == best_bin]
    best_label = max(in_bin, key=lambda lab: by_label[lab])
    conf = by_bin[best_bin]
    ranked = sorted(by_label.items(), key=lambda kv: kv[1], reverse=True)[:k]
    strange = unfamiliar(familiarity, min_familiarity)
    return Prediction(
        bin=best_bin,
        label=best_label,
        confidence=round(conf, 6),
        decision=DECIDED if conf >= threshold and not strange else UNSURE,
        top_k=[{"label": lab, "p": round(p, 6)} for lab, p in ranked],
        probs=by_label,
        familiarity=familiarity,
    )
