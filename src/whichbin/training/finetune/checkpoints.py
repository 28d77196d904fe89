"""The per-epoch checkpoint a re-run resumes from, and the epoch kept for export."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from whichbin.config import TrainingConfig
from whichbin.training.finetune.params import (
    EXPORT_ONLY,
    Recipe,
    Row,
    finetune_settings,
    stable_hash,
)

logger = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"


def fingerprint(
    cfg: TrainingConfig,
    recipe: Recipe,
    rows_train: Sequence[Row],
    rows_val: Sequence[Row],
    labels: list[str],
    weights: str,
) -> str:
    """What a checkpoint must match to be resumed: settings (except export-only ones),
    data, labels and starting weights."""
    settings = finetune_settings(cfg, recipe)
    return stable_hash(
        {
            "p": {k: v for k, v in settings.items() if k not in EXPORT_ONLY},
            "train": [r.sha256 for r in rows_train],
            "val": [r.sha256 for r in rows_val],
            "labels": labels,
            "w": weights,
        }
    )


def empty_history() -> dict[str, list[float]]:
    return {"train_loss": [], "val_loss": [], "val_acc": [], "seconds": []}


@dataclass
class TrainState:
    """Where a run stands: epochs done, their history, and the epoch kept for export."""

    epoch: int = 0
    history: dict[str, list[float]] = field(default_factory=empty_history)
    best: dict[str, Any] = field(
        default_factory=lambda: {"acc": -1.0, "loss": np.inf, "epoch": 0, "state": None}
    )

    def keep(self, net: torch.nn.Module, epoch: int, loss: float, acc: float, last: bool) -> None:
        """Keep this epoch's weights when it is the best so far (accuracy, then lower loss),
        or always with ``last`` (``finetune_select: last``)."""
        if last or (acc, -loss) > (self.best["acc"], -self.best["loss"]):
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            self.best = {"acc": acc, "loss": loss, "epoch": epoch, "state": state}


class Checkpointer:
    """``out_dir/checkpoint.pt``: written atomically after each epoch, resumed when its
    fingerprint matches."""

    def __init__(self, out_dir: Path, fingerprint: str) -> None:
        self.path = Path(out_dir) / CHECKPOINT
        self.fingerprint = fingerprint

    def restore(self, net: torch.nn.Module, opt: Any, sched: Any) -> TrainState:
        """Load the checkpoint into ``net``, ``opt`` and ``sched``; a fresh state when there
        is none or it is from other settings or data."""
        if not self.path.is_file():
            return TrainState()
        ck = torch.load(self.path, map_location="cpu", weights_only=False)
        if ck.get("fingerprint") != self.fingerprint:
            logger.info("fine-tuning: %s is from other settings or data; starting over", self.path)
            return TrainState()
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        logger.info("fine-tuning: resuming after epoch %d from %s", int(ck["epoch"]), self.path)
        return TrainState(int(ck["epoch"]), ck["history"], ck["best"])

    def save(self, net: torch.nn.Module, opt: Any, sched: Any, state: TrainState) -> None:
        ck = {
            "fingerprint": self.fingerprint,
            "epoch": state.epoch,
            "model": net.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "history": state.history,
            "best": state.best,
        }
        tmp = self.path.with_suffix(".tmp")
        torch.save(ck, tmp)
        tmp.replace(self.path)


def kept_weights(path: Path) -> dict[str, Any]:
    """The exported weights of a finished run's checkpoint (an ensemble member's)."""
    ck = torch.load(Path(path) / CHECKPOINT, weights_only=False)
    return ck["best"]["state"] or ck["model"]
