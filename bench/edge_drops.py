"""Accuracy as the camera sees it: real photos dropped on a counter, a table or into a bin.

Photos from ``../shared/data/real/`` (both sources; their bins from the default rule
pack) are composited at 20-50 % of a 640x480 frame, at random places, on generated
counter, table and bin-interior backgrounds under drifting light
(``whichbin.edge.scenes``). Each sequence is fed frame by frame through the real
``EdgeRunner`` (presence → classifier → K-of-N vote) with the real ONNX classifier, once
per mode:

* ``crop``: the default, the item's changed region cut out with a 5 % margin, squared;
* ``crop_margin_0.15``: the same with a 15 % margin;
* ``crop_votes``: three crops (margins 0.05, 0 and 0.15) vote;
* ``crop_changed_0.10``: the default crop, detecting items with the old threshold
  (``changed_fraction`` 0.10 instead of 0.04);
* ``no_crop``: the whole frame (``crop = False``; what the edge did before).

Measured per mode: events per item (exactly one wanted; an event is an item's when it
is decided between the item's first frame and the end of the gap after it), items never
detected, stray events, and event bin accuracy (an item without an event counts as
wrong). The reference is the same model's photo-level bin accuracy on the same photos
(the plain photo classified, as ``whichbin classify`` does). The model must never have
seen ``real/``: pass it with ``--model`` (the v3 bundle, trained on trashnet + extra only,
is recognised by its sha256; any other needs ``--model-never-saw-real``).

Usage:
  cp src/whichbin/resources/default_model.onnx /tmp/whichbin-default-v3.onnx  # before v4
  nice python bench/edge_drops.py --model /tmp/whichbin-default-v3.onnx [--items 240]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import SHARED, write_result  # noqa: E402

from whichbin.config import PresenceConfig  # noqa: E402
from whichbin.edge.presence import PresenceDetector  # noqa: E402
from whichbin.edge.runner import ActiveModel, EdgeRunner, StaticModel  # noqa: E402
from whichbin.edge.scenes import BACKGROUNDS, SequenceBuilder  # noqa: E402
from whichbin.edge.sources import Frame  # noqa: E402
from whichbin.inference import OnnxClassifier  # noqa: E402
from whichbin.rules import load_rules  # noqa: E402

# Bundles known to have been trained without real/ (sha256 → what they were trained on).
NEVER_SAW_REAL = {
    "1ba3c491d0ea502d7fdd4ecd22c60e9776e55940f16bd420cee05db4e4fe7deb": (
        "whichbin-default/3: trashnet + extra only, bundled before real/ existed"
    ),
}
MODES: dict[str, dict[str, Any]] = {
    "crop": {},
    "crop_margin_0.15": {"crop_margin": 0.15},
    "crop_votes": {"extra_crop_margins": (0.0, 0.15)},
    "crop_changed_0.10": {"changed_fraction": 0.10},
    "no_crop": {"crop": False},
}
FRAME = (640, 480)
FPS = 10.0  # the clock the decider sees: one frame every 0.1 s


@dataclass(frozen=True)
class Item:
    path: Path
    source: str
    label: str
    bin: str


@dataclass
class Outcome:
    events: list[list[str]] = field(default_factory=list)  # per item: the events' bins
    stray: int = 0  # events outside every item's window
    classified: int = 0
    frames: int = 0


class ListPublisher:
    """Keeps nothing: the runner's decisions are read from ``step``'s return value."""

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> bool:
        return True


def sample_items(real: Path, n: int, seed: int) -> list[Item]:
    """Up to ``n`` photos of real/, spread over sources and labels (every label at least
    once), each with its bin from the default rule pack (an unknown label fails loudly)."""
    rules = load_rules()
    by_label: dict[tuple[str, str], list[Path]] = {}
    for path in sorted(real.glob("*/*/*.jpg")):
        by_label.setdefault((path.parts[-3], path.parts[-2]), []).append(path)
    if not by_label:
        raise SystemExit(f"{real}: no photos (expected real/<source>/<label>/*.jpg)")
    total = sum(len(v) for v in by_label.values())
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    for (source, label), paths in sorted(by_label.items()):
        bin_ = rules.bin_of(label)  # ConfigError naming the label when the pack lacks it
        k = max(1, round(n * len(paths) / total))
        for i in rng.permutation(len(paths))[:k]:
            items.append(Item(paths[int(i)], source, label, bin_))
    order = rng.permutation(len(items))
    return [items[int(i)] for i in order]


def photo_bins(clf: OnnxClassifier, items: list[Item]) -> list[str]:
    """The model's bin for each photo as it is (``whichbin classify``)."""
    from PIL import Image

    out = []
    for item in items:
        with Image.open(item.path) as im:
            out.append(clf.predict([np.asarray(im.convert("RGB"))])[0].bin)
    return out


def build(chunk: list[Item], seed: int, scene: str) -> tuple[Any, list[tuple[int, int]]]:
    """One sequence of drops and, per item, its window (first frame, end of its gap)."""
    rng = np.random.default_rng(seed)
    gap = 8
    builder = SequenceBuilder(seed=seed, size=FRAME, scene=scene).empty(15)
    for item in chunk:
        area = float(rng.uniform(0.2, 0.5))
        center = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7)))
        builder.drop(item.path, item.bin, rest=10, gap=gap, area=area, center=center)
    seq = builder.empty(10).build()
    windows = [(first, last + gap) for first, last, _ in seq.items]
    return seq, windows


def play(
    frames: list[np.ndarray],
    windows: list[tuple[int, int]],
    model: ActiveModel,
    cfg: PresenceConfig,
) -> Outcome:
    """Feed frames through a real EdgeRunner; attribute each decision to an item's window."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    now = [t0]
    runner = EdgeRunner(
        _NoSource(),
        StaticModel(model),
        ListPublisher(),
        "bench",
        clock=lambda: now[0],
        presence=PresenceDetector(cfg),
    )
    out = Outcome(events=[[] for _ in windows])
    for i, image in enumerate(frames):
        now[0] = t0 + timedelta(seconds=i / FPS)
        decision = runner.step(Frame(image, i / FPS, i))
        if decision is None:
            continue
        owner = next((k for k, (a, b) in enumerate(windows) if a <= i <= b), None)
        if owner is None:
            out.stray += 1
        else:
            out.events[owner].append(decision.bin)
    runner.finish()
    out.classified, out.frames = runner.stats.classified, runner.stats.frames
    return out


class _NoSource:
    def read(self) -> Frame | None:
        return None

    def close(self) -> None:
        pass


def accuracy(hits: list[bool]) -> float | None:
    return round(100.0 * sum(hits) / len(hits), 2) if hits else None


def summarise(
    items: list[Item], photo: list[str], events: list[list[str]], scenes: list[str]
) -> dict[str, Any]:
    """Event vs photo-level accuracy overall, per source and per background."""
    first = [e[0] if e else None for e in events]
    counts = Counter(min(len(e), 2) for e in events)

    def split(keys: list[str]) -> dict[str, Any]:
        groups: dict[str, Any] = {}
        for key in sorted(set(keys)):
            idx = [i for i, k in enumerate(keys) if k == key]
            ev = accuracy([first[i] == items[i].bin for i in idx])
            ph = accuracy([photo[i] == items[i].bin for i in idx])
            groups[key] = {
                "items": len(idx),
                "event_bin_accuracy": ev,
                "photo_bin_accuracy": ph,
                "gap_points": round(ev - ph, 2) if ev is not None and ph is not None else None,
            }
        return groups

    event_acc = accuracy([f == it.bin for f, it in zip(first, items, strict=True)])
    photo_acc = accuracy([p == it.bin for p, it in zip(photo, items, strict=True)])
    assert event_acc is not None and photo_acc is not None
    return {
        "items": len(items),
        "events_per_item": {"0": counts[0], "1": counts[1], "2+": counts[2]},
        "exactly_one_event": accuracy([len(e) == 1 for e in events]),
        "never_detected": [
            str(items[i].path.relative_to(SHARED)) for i, e in enumerate(events) if not e
        ],
        "event_bin_accuracy": event_acc,
        "photo_bin_accuracy": photo_acc,
        "gap_points": round(event_acc - photo_acc, 2),
        "by_source": split([it.source for it in items]),
        "by_background": split(scenes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a bundle that never saw real/")
    ap.add_argument(
        "--model-never-saw-real",
        action="store_true",
        help="assert that --model was trained without real/ (needed for an unknown sha256)",
    )
    ap.add_argument("--items", type=int, default=240, help="photos sampled from real/")
    ap.add_argument("--per-sequence", type=int, default=10, help="items per drop sequence")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", default=",".join(MODES), help=f"any of {','.join(MODES)}")
    ap.add_argument("--name", default="edge_drops")
    args = ap.parse_args()

    clf = OnnxClassifier(args.model, threads=1)
    basis = NEVER_SAW_REAL.get(clf.sha256)
    if basis is None and not args.model_never_saw_real:
        raise SystemExit(
            f"{args.model}: sha256 {clf.sha256[:12]} is not a bundle known to be trained "
            "without real/; pass --model-never-saw-real if it was"
        )
    model = ActiveModel.from_classifier(clf)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"--modes: unknown {sorted(unknown)}; choose from {list(MODES)}")
    items = sample_items(SHARED / "real", args.items, args.seed)
    start = time.perf_counter()
    photo = photo_bins(clf, items)
    events: dict[str, list[list[str]]] = {m: [] for m in modes}
    stray = Counter[str]()
    classified = Counter[str]()
    frames = 0
    scenes: list[str] = []
    for k in range(0, len(items), args.per_sequence):
        chunk = items[k : k + args.per_sequence]
        scene = BACKGROUNDS[(k // args.per_sequence) % len(BACKGROUNDS)]
        seq, windows = build(chunk, args.seed * 1000 + k, scene)
        scenes += [scene] * len(chunk)
        frames += len(seq.frames)
        for mode in modes:
            out = play(seq.frames, windows, model, PresenceConfig(**MODES[mode]))
            events[mode] += out.events
            stray[mode] += out.stray
            classified[mode] += out.classified
        print(
            f"{k + len(chunk)}/{len(items)} items, {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
        )
    results = {}
    for mode in modes:
        results[mode] = summarise(items, photo, events[mode], scenes)
        results[mode]["stray_events"] = stray[mode]
        results[mode]["classified_per_item"] = round(classified[mode] / len(items), 2)
        results[mode]["presence"] = {k: v for k, v in MODES[mode].items()}
    write_result(
        args.name,
        {
            "model": {
                "path": str(args.model),
                "version": clf.version,
                "sha256": clf.sha256,
                "trained_on_real": False,
                "basis": basis or "asserted with --model-never-saw-real",
            },
            "photos": {
                "root": "../shared/data/real",
                "items": len(items),
                "by_source": dict(Counter(it.source for it in items)),
                "by_bin": dict(Counter(it.bin for it in items)),
                "seed": args.seed,
            },
            "scene": {
                "frame": list(FRAME),
                "area": [0.2, 0.5],
                "backgrounds": list(BACKGROUNDS),
                "frames": frames,
                "per_item": "4 moving in, 10 still, 3 moving out, 8 empty",
                "drift_grey_levels": 15,
            },
            "modes": results,
            "seconds": round(time.perf_counter() - start, 1),
        },
    )


if __name__ == "__main__":
    main()
