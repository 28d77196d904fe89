"""Fine-tuning the backbone on a 2-core CPU, exported as one SPEC bundle.

``partial`` (the default): the frozen early part of the network (stem and
``blocks[:from_block]``) runs once per (image, augmented view) through ONNX Runtime; its
fp16 activations are cached on disk (:class:`ActivationStore`), and only the last blocks,
``conv_head``/``bn2`` and a linear classifier are trained on them, for a few epochs.
``full``: every layer trains on augmented images at a reduced resolution.

Both: AdamW with warm-up and a cosine schedule, label smoothing, class-balanced loss, the
classifier initialised from a linear probe (LP-FT, which keeps pretrained features intact
better and so generalises better out of distribution), a checkpoint each epoch in
``out_dir`` that a re-run resumes from, and a bundle with ``logits`` and ``embedding``.

The pieces: ``params`` (what a run reads: the ``training`` section and a :class:`Recipe`),
``nets`` (prefix, trained part, bundle graph), ``data`` (backgrounds, activation or image
feeding), ``loop`` (optimiser, probe, one epoch, validation), ``checkpoints`` (resume),
``ensemble`` (members merged into one bundle), ``export`` (the bundle) and ``run``.
"""

from whichbin.training.finetune.data import load_backgrounds, pick_backgrounds
from whichbin.training.finetune.export import bundle_outputs
from whichbin.training.finetune.loop import mixup_draw
from whichbin.training.finetune.params import FinetuneResult, Recipe, finetune_settings
from whichbin.training.finetune.run import finetune

__all__ = [
    "FinetuneResult",
    "Recipe",
    "bundle_outputs",
    "finetune",
    "finetune_settings",
    "load_backgrounds",
    "mixup_draw",
    "pick_backgrounds",
]
