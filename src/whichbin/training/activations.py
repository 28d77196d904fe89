"""The activation cache of partial fine-tuning: the frozen prefix of the network runs once
per (image, augmented view) and its fp16 output is kept on disk."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from whichbin.inference import PreprocessSpec, to_tensor
from whichbin.progress import default_reporter, log_reporter
from whichbin.training.augment import augment, object_mask
from whichbin.training.embeddings import load_rgb

logger = logging.getLogger(__name__)


class ActivationStore:
    """fp16 activations, one row per (image sha256, view), in an append-only memmap.

    ``acts.f16`` holds the rows, ``index.tsv`` one ``sha<TAB>view`` line per row, written
    after the row's bytes: after a crash, rows without an index line are cut off.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.data, self.index_path = root / "acts.f16", root / "index.tsv"
        self.shape_path = root / "shape.json"
        self.shape: tuple[int, ...] | None = None
        if self.shape_path.is_file():
            self.shape = tuple(json.loads(self.shape_path.read_text()))
        text = self.index_path.read_text() if self.index_path.is_file() else ""
        lines = text.split("\n")[:-1]  # a last line without "\n" is incomplete
        self.rows: dict[tuple[str, int], int] = {}
        for i, line in enumerate(lines):
            sha, view = line.split("\t")
            self.rows[(sha, int(view))] = i
        if self.shape is not None and self.data.is_file():
            with open(self.data, "r+b") as f:
                f.truncate(len(lines) * self._row_bytes())
        if not text.endswith("\n") and text:
            self.index_path.write_text("".join(line + "\n" for line in lines))

    def _row_bytes(self) -> int:
        assert self.shape is not None
        return int(np.prod(self.shape)) * 2

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def row(self, sha: str, view: int) -> int:
        return self.rows[(sha, view)]

    def append(self, keys: list[tuple[str, int]], acts: np.ndarray) -> None:
        """Add rows (acts [len(keys), C, H, W] fp16)."""
        if self.shape is None:
            self.shape = tuple(int(d) for d in acts.shape[1:])
            self.shape_path.write_text(json.dumps(list(self.shape)))
        with open(self.data, "ab") as f:
            f.write(np.ascontiguousarray(acts, np.float16).tobytes())
        with open(self.index_path, "a") as f:
            for sha, view in keys:
                self.rows[(sha, view)] = len(self.rows)
                f.write(f"{sha}\t{view}\n")

    def reader(self) -> Callable[[np.ndarray], np.ndarray]:
        """rows → float32 array, from a read-only memmap of everything stored so far."""
        assert self.shape is not None, "empty activation store"
        mm = np.memmap(self.data, np.float16, "r", shape=(len(self.rows), *self.shape))
        return lambda rows: np.asarray(mm[np.asarray(rows)], np.float32)


def thumb(img: Image.Image, side: int) -> Image.Image:
    img.thumbnail((side, side), Image.Resampling.BILINEAR)
    return img


def view_rng(aug_seed: int, sha256: str, view: int) -> np.random.Generator:
    """The generator of one augmented view: the same (image, view) always looks the same."""
    return np.random.default_rng([aug_seed, int(sha256[:15], 16), view])


def _make_views(
    path: Path,
    sha: str,
    views: list[int],
    size: int,
    bgs: list[Image.Image],
    p_composite: float,
    aug_seed: int,
) -> list[Image.Image]:
    img = load_rgb(path)
    out = [img] if 0 in views else []
    if any(v > 0 for v in views):
        small = thumb(img.copy(), int(size * 1.4))  # augmenting fewer pixels is faster
        mask = object_mask(small) if p_composite > 0 else None
        for v in sorted(v for v in views if v > 0):
            out.append(augment(small, view_rng(aug_seed, sha, v), bgs, p_composite, mask))
    return out


def cache_activations(
    store: ActivationStore,
    prefix_onnx: Path,
    items: dict[str, tuple[Path, list[int]]],
    spec: PreprocessSpec,
    backgrounds: list[Image.Image],
    *,
    p_composite: float,
    aug_seed: int,
    threads: int,
    progress: bool = True,
) -> int:
    """Compute and store the missing (sha, view) activations; returns how many were new.

    ``p_composite`` and ``aug_seed`` shape the augmented views (``training.augment_composite``
    and the recipe's seed); ``threads`` ONNX Runtime threads.
    """
    import onnxruntime as ort

    todo = [(s, path, [v for v in vs if (s, v) not in store]) for s, (path, vs) in items.items()]
    todo = [t for t in todo if t[2]]
    total = sum(len(t[2]) for t in todo)
    if not total:
        return 0
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(prefix_onnx), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    logger.info("caching %d activations (%d images)", total, len(todo))
    chunks = [todo[i : i + 8] for i in range(0, len(todo), 8)]

    def work(chunk: list) -> tuple[list[tuple[str, int]], list[Image.Image]]:
        keys, imgs = [], []
        for s, path, vs in chunk:
            keys += [(s, v) for v in sorted(vs)]
            imgs += _make_views(path, s, vs, spec.size, backgrounds, p_composite, aug_seed)
        return keys, imgs

    reporter = default_reporter() if progress else log_reporter
    with ThreadPoolExecutor(max_workers=2) as pool, reporter("activations", total) as advance:
        pending = [pool.submit(work, c) for c in chunks[:2]]
        for i in range(len(chunks)):
            keys, imgs = pending.pop(0).result()
            if i + 2 < len(chunks):
                pending.append(pool.submit(work, chunks[i + 2]))
            act = sess.run(None, {name: to_tensor(imgs, spec)})[0]
            store.append(keys, act.astype(np.float16))
            advance(len(keys))
    return total
