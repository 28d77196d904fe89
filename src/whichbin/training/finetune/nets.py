"""The networks of fine-tuning: the frozen prefix, the trained part and the bundle's graph."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn


class Trainable(nn.Module):
    """The trained part: blocks[k:] (k = 0: also the stem), conv_head, bn2, classifier."""

    def __init__(self, model: Any, k: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.stem = nn.Sequential(model.conv_stem, model.bn1) if k == 0 else nn.Identity()
        self.blocks = nn.Sequential(*model.blocks[k:])
        self.conv_head, self.bn2 = model.conv_head, model.bn2
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(int(model.num_features), n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding [N, D]."""
        return self.bn2(self.conv_head(self.blocks(self.stem(x)))).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.features(x)))


def _prefix(model: Any, k: int) -> nn.Module:
    """The frozen part: stem and blocks[:k] (nothing when k = 0)."""
    if k == 0:
        return nn.Identity()
    return nn.Sequential(model.conv_stem, model.bn1, *model.blocks[:k])


class BundleNet(nn.Module):
    """Frozen prefix + trained part(s), returning (logits, embedding) for the bundle.

    With ``tta_flip`` the graph also runs the horizontally flipped image (one batch of
    2 N) and returns the mean embedding and its logits: test-time augmentation inside the
    bundle, at twice the inference cost.

    Several trained parts (an ensemble sharing the prefix) give the concatenation of their
    embeddings and one linear classifier on it, ``[W1 .. Wn] / n`` and the mean bias, whose
    logits are the mean of the members' logits; ``retrain-head`` can still replace it.
    """

    def __init__(
        self,
        model: Any,
        k: int,
        trained: Trainable | Sequence[Trainable],
        tta_flip: bool = False,
    ) -> None:
        super().__init__()
        parts = [trained] if isinstance(trained, Trainable) else list(trained)
        self.prefix, self.parts, self.tta_flip = _prefix(model, k), nn.ModuleList(parts), tta_flip
        self.members = parts  # the same modules, typed
        self.fc = parts[0].fc if len(parts) == 1 else merged_classifier([p.fc for p in parts])

    def features(self, act: torch.Tensor) -> torch.Tensor:
        return torch.cat([p.features(act) for p in self.members], 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.tta_flip:
            emb = self.features(self.prefix(torch.cat([x, torch.flip(x, [3])])))
            emb = emb.reshape(2, -1, emb.shape[1]).mean(0)
        else:
            emb = self.features(self.prefix(x))
        return self.fc(emb), emb


def merged_classifier(fcs: Sequence[nn.Linear]) -> nn.Linear:
    """One linear layer on the concatenated inputs whose output is the mean of ``fcs``."""
    n = len(fcs)
    out = nn.Linear(sum(f.in_features for f in fcs), fcs[0].out_features)
    with torch.no_grad():
        out.weight.copy_(torch.cat([f.weight for f in fcs], 1) / n)
        out.bias.copy_(torch.stack([f.bias for f in fcs]).mean(0))
    return out


def export_prefix_onnx(model: Any, k: int, size: int, out: Path) -> Path:
    """The frozen prefix as ONNX (input → ``act``), written once per cache key."""
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with torch.no_grad():
        torch.onnx.export(
            _prefix(model, k).eval(),
            (torch.zeros(1, 3, size, size),),
            str(tmp),
            input_names=["input"],
            output_names=["act"],
            dynamic_axes={"input": {0: "N"}, "act": {0: "N"}},
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(out)
    return out
