"""Frozen-backbone embeddings, computed once per image and cached.

Key: image sha256 + backbone identity + preprocessing. The cache is a real SQLite file,
so adding 30 photos computes 30 embeddings.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from whichbin import imageio
from whichbin.inference import PreprocessSpec, to_tensor
from whichbin.progress import default_reporter, log_reporter
from whichbin.vector_cache import VectorCache

logger = logging.getLogger(__name__)


def embedding_key(backbone_id: str, spec: PreprocessSpec) -> str:
    """Identity of (backbone weights, preprocessing) for cache keys."""
    blob = json.dumps({"b": backbone_id, "p": spec.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class EmbeddingCache(VectorCache):
    """key × sha256 → float32 embedding, in SQLite (table ``emb``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "emb", "key")


def load_rgb(path: Path) -> Image.Image:
    """Decode an image as RGB (processing has already normalised it), size-checked first."""
    return imageio.load_rgb(path)


class OnnxEncoder:
    """Runs an ONNX graph with an ``embedding`` output on preprocessed batches."""

    def __init__(self, onnx_path: Path, spec: PreprocessSpec, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(onnx_path), opts, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        self.spec = spec

    def encode(self, images: list[Image.Image]) -> np.ndarray:
        return self.session.run(["embedding"], {self.input: to_tensor(images, self.spec)})[0]


def compute_embeddings(
    paths: Sequence[Path],
    shas: Sequence[str],
    encoder: OnnxEncoder,
    cache: EmbeddingCache,
    key: str,
    batch_size: int = 32,
    progress: bool = True,
) -> np.ndarray:
    """Embeddings [N, D] for the images, computing only the ones not cached."""
    have = cache.get_many(key, shas)
    todo = [(p, s) for p, s in zip(paths, shas, strict=True) if s not in have]
    todo = list({s: (p, s) for p, s in todo}.values())  # same bytes, same vector
    if todo:
        logger.info("embedding %d new images (%d cached)", len(todo), len(have))
        batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        reporter = default_reporter() if progress else log_reporter
        with (
            ThreadPoolExecutor(max_workers=2) as pool,
            reporter("embeddings", len(todo)) as advance,
        ):
            # Decode the next batch while the current one runs.
            pending = pool.submit(lambda b: [load_rgb(p) for p, _ in b], batches[0])
            for i, batch in enumerate(batches):
                images = pending.result()
                if i + 1 < len(batches):
                    pending = pool.submit(lambda b: [load_rgb(p) for p, _ in b], batches[i + 1])
                vecs = encoder.encode(images)
                new = {s: v for (_, s), v in zip(batch, vecs, strict=True)}
                cache.put_many(key, new)
                have.update(new)
                advance(len(batch))
    return np.stack([have[s] for s in shas]) if shas else np.zeros((0, 0), np.float32)


def compute_view_embeddings(
    paths: Sequence[Path],
    shas: Sequence[str],
    encoder: OnnxEncoder,
    cache: EmbeddingCache,
    key: str,
) -> np.ndarray:
    """Embeddings [N * VIEWS, D] of each image's :func:`~whichbin.training.augment.fixed_views`
    (image-major), cached per image and view like plain embeddings."""
    from whichbin.training.augment import VIEWS, fixed_views

    keys = [f"{key}:view{j}" for j in range(VIEWS)]
    have = [cache.get_many(k, shas) for k in keys]
    todo = [(p, s) for p, s in zip(paths, shas, strict=True) if any(s not in h for h in have)]
    new: list[dict[str, np.ndarray]] = [{} for _ in keys]
    for p, s in dict.fromkeys(todo):
        for j, vec in enumerate(encoder.encode(fixed_views(load_rgb(p)))):
            new[j][s] = have[j][s] = vec
    for k, vecs in zip(keys, new, strict=True):
        if vecs:
            cache.put_many(k, vecs)  # one transaction per view, not per image and view
    if not len(shas):
        return np.zeros((0, 0), np.float32)
    return np.stack([have[j][s] for s in shas for j in range(VIEWS)])


def compute_composite_embeddings(
    paths: Sequence[Path],
    shas: Sequence[str],
    encoder: OnnxEncoder,
    cache: EmbeddingCache,
    key: str,
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of each board photo's object composited on a procedural surface
    (:func:`~whichbin.training.augment.composite_on`, seeded by the image's sha256), and a
    mask of the images that had a board to cut from. Cached per image, misses included."""
    from whichbin.training.augment import AUGMENT_VERSION, composite_on, object_mask
    from whichbin.training.augment import procedural_background as surface

    ckey = f"{key}:composite:v{AUGMENT_VERSION}"
    have = cache.get_many(ckey, shas)
    todo = [(p, s) for p, s in dict.fromkeys(zip(paths, shas, strict=True)) if s not in have]

    def make(item: tuple[Path, str]) -> Image.Image | None:
        img = load_rgb(item[0])
        mask = object_mask(img)
        if mask is None:
            return None
        rng = np.random.default_rng(int(item[1][:12], 16))
        return composite_on(img, surface(rng, img.size), rng, mask)

    if todo:
        logger.info("compositing %d photos onto other surfaces", len(todo))
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i in range(0, len(todo), batch_size):
            batch = todo[i : i + batch_size]
            made = list(pool.map(make, batch))
            good = [(s, im) for (_, s), im in zip(batch, made, strict=True) if im is not None]
            vecs = encoder.encode([im for _, im in good]) if good else np.zeros((0, 0))
            new = {s: v for (s, _), v in zip(good, vecs, strict=True)}
            dim = len(next(iter(have.values()))) if have else vecs.shape[1]
            for (_, s), im in zip(batch, made, strict=True):
                if im is None and dim:  # no board: remembered as a NaN row
                    new[s] = np.full(dim, np.nan, np.float32)
            cache.put_many(ckey, new)
            have.update(new)
    found = [have.get(s) for s in shas]
    ok = np.array([v is not None and not np.isnan(v[0]) for v in found], bool)
    vectors = [v for v, k in zip(found, ok, strict=True) if k and v is not None]
    dim = next((len(v) for v in found if v is not None), 0)
    return (np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)), ok
