"""Recorded "drop" sequences for the edge tests: the scene builder lives in
``whichbin.edge.scenes`` (the benchmarks use it too); here are the test-only bits.

``pick_photos`` chooses photos the model recognises, so tests check the edge pipeline
(presence, vote, events) rather than the model's accuracy.
"""

from __future__ import annotations

from pathlib import Path

from whichbin.config import PresenceConfig
from whichbin.edge.region import crop_box
from whichbin.edge.scenes import ROI, SIZE, Sequence, SequenceBuilder, load_item, write_video

__all__ = ["ROI", "SIZE", "Sequence", "SequenceBuilder", "load_item", "pick_photos", "write_video"]

# Label folders of ../shared/data per bin, in the order tried.
BIN_FOLDERS = {
    "compost": ["extra/organic"],
    "landfill": ["trashnet/trash", "extra/textile"],
    "recycling": ["trashnet/plastic", "trashnet/glass", "trashnet/metal"],
}


def pick_photos(
    shared: Path,
    classifier,  # noqa: ANN001
    per_bin: int = 2,
    min_confidence: float = 0.8,
    limit: int = 40,
    size: tuple[int, int] = SIZE,
) -> dict[str, list[Path]]:
    """Per bin, the first photos the model gets right with confidence on the counter, as
    the edge sees them (the item's crop).

    The tests check the edge pipeline (presence, vote, events), not the model's accuracy,
    so they use items the model recognises; ``pipeline`` benchmarks measure accuracy.
    """
    out: dict[str, list[Path]] = {}
    for bin_, folders in BIN_FOLDERS.items():
        chosen: list[Path] = []
        candidates = [p for f in folders for p in sorted((shared / f).glob("*.jpg"))[:limit]]
        for photo in candidates:
            b = SequenceBuilder(seed=7, size=size)
            iw, ih = b.item_size
            x0, y0 = (size[0] - iw) // 2, (size[1] - ih) // 2
            b._frame(load_item(photo, b.item_size), x0, y0)
            # What the edge classifies: the item with the default margin, squared up.
            cfg = PresenceConfig()
            box = crop_box((x0, y0, x0 + iw, y0 + ih), b.frames[0].shape, cfg.crop_margin)
            pred = classifier.predict([b.frames[0][box[1] : box[3], box[0] : box[2]]])[0]
            if pred.bin == bin_ and pred.confidence >= min_confidence:
                chosen.append(photo)
                if len(chosen) == per_bin:
                    break
        if len(chosen) < per_bin:
            raise LookupError(f"fewer than {per_bin} {bin_} photos the model recognises")
        out[bin_] = chosen
    return out
