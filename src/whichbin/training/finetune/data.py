"""Feeding fine-tuning: backgrounds to composite onto, and the batches of each epoch.

``partial``: the frozen prefix runs once per (image, view) and its activations are cached
on disk (:class:`~whichbin.training.activations.ActivationStore`); an epoch reads a random
view of each image. ``full``: images are decoded once and augmented on the fly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from whichbin.config import TrainingConfig
from whichbin.inference import PreprocessSpec, to_tensor
from whichbin.training.activations import ActivationStore, cache_activations, thumb
from whichbin.training.augment import AUGMENT_VERSION, augment, object_mask
from whichbin.training.embeddings import load_rgb
from whichbin.training.finetune.nets import export_prefix_onnx
from whichbin.training.finetune.params import Recipe, Row, stable_hash, torch_threads

Batch = Callable[[np.ndarray], np.ndarray]  # item indices → network input


def load_backgrounds(paths: Sequence[Path], side: int = 320) -> list[Image.Image]:
    """Background pictures, decoded once and shrunk."""
    out = []
    for p in paths:
        img = load_rgb(Path(p))
        img.thumbnail((side, side), Image.Resampling.BILINEAR)
        out.append(img)
    return out


def pick_backgrounds(rows: Sequence[Row], n: int = 150, seed: int = 0) -> list[Path]:
    """Up to ``n`` training photos that are not board photos (no object can be cut out of
    them): backgrounds to composite board objects onto. Looks at most ``4 n`` images."""
    rng = np.random.default_rng(seed)
    out: list[Path] = []
    for i in rng.permutation(len(rows))[: 4 * n]:
        if len(out) >= n:
            break
        img = load_rgb(rows[int(i)].path)
        img.thumbnail((256, 256))
        if object_mask(img) is None:
            out.append(rows[int(i)].path)
    return sorted(out)


@dataclass
class Feed:
    """The inputs of one run, by item index.

    Attributes:
        train: A training batch (a random augmented view of each item).
        val: A validation batch (the plain image).
        plain: A training batch without augmentation (the linear probe's features).
    """

    train: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    val: Batch
    plain: Batch


def create_feed(
    cfg: TrainingConfig,
    recipe: Recipe,
    model: Any,
    k: int,
    pre: PreprocessSpec,
    weights: str,
    rows_train: Sequence[Row],
    rows_val: Sequence[Row],
    work_dir: Path,
    backgrounds: Sequence[Path],
    progress: bool,
) -> Feed:
    """Cached activations of the frozen prefix (partial), or decoded images (full)."""
    bgs = load_backgrounds(backgrounds)
    if cfg.mode != "partial":
        return _image_feed(cfg, pre, rows_train, rows_val, bgs)
    aug: dict[str, Any] = {
        "v": AUGMENT_VERSION,
        "seed": recipe.aug_seed,
        "p": cfg.augment_composite,
        "bg": stable_hash([(str(b), Path(b).stat().st_size) for b in backgrounds]),
    }
    key = stable_hash({"w": weights, "pre": pre.model_dump(mode="json"), "k": k, "aug": aug})
    prefix_onnx = export_prefix_onnx(model, k, pre.size, work_dir / "finetune" / f"{key}.onnx")
    store = ActivationStore(work_dir / "finetune" / f"acts-{key}")
    views = cfg.augment_views
    items: dict[str, tuple[Path, list[int]]] = {}
    for r in rows_val:
        items[r.sha256] = (r.path, [0])
    for r in rows_train:
        items[r.sha256] = (r.path, list(range(views + 1)))
    cache_activations(
        store,
        prefix_onnx,
        items,
        pre,
        bgs,
        p_composite=cfg.augment_composite,
        aug_seed=recipe.aug_seed,
        threads=torch_threads(cfg),
        progress=progress,
    )
    reader = store.reader()
    va_rows = np.array([store.row(r.sha256, 0) for r in rows_val])
    tr_rows = np.array([[store.row(r.sha256, v) for v in range(views + 1)] for r in rows_train])

    def train_x(idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return reader(tr_rows[idx, rng.integers(0, views + 1, len(idx))])

    return Feed(train_x, lambda idx: reader(va_rows[idx]), lambda idx: reader(tr_rows[idx, 0]))


def _image_feed(
    cfg: TrainingConfig,
    pre: PreprocessSpec,
    rows_train: Sequence[Row],
    rows_val: Sequence[Row],
    bgs: list[Image.Image],
) -> Feed:
    side = int(pre.size * 1.5)
    imgs_tr = [thumb(load_rgb(r.path), side) for r in rows_train]
    x_val = to_tensor([load_rgb(r.path) for r in rows_val], pre)

    def train_x(idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        seeds = rng.integers(0, 2**63, len(idx))
        views = [
            augment(imgs_tr[i], np.random.default_rng(s), bgs, cfg.augment_composite)
            for i, s in zip(idx, seeds, strict=True)
        ]
        return to_tensor(views, pre)

    def plain_x(idx: np.ndarray) -> np.ndarray:
        return to_tensor([imgs_tr[i] for i in idx], pre)

    return Feed(train_x, lambda idx: x_val[idx], plain_x)


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A shuffled epoch in batches; a last batch of one joins the one before (BatchNorm
    needs two samples)."""
    order = rng.permutation(n)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches[-2] = np.concatenate([batches[-2], batches.pop()])
    return batches


def as_tensor(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return t.contiguous(memory_format=torch.channels_last)


def prefetch(
    batches: list[np.ndarray], load: Callable[[np.ndarray], np.ndarray]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Load the next batch in a thread while the current one trains."""
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = pool.submit(load, batches[0])
        for i, idx in enumerate(batches):
            x = nxt.result()
            if i + 1 < len(batches):
                nxt = pool.submit(load, batches[i + 1])
            yield idx, x
