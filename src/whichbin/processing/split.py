"""Deterministic, stratified, group-aware and stable train/val/test split. Pure: no I/O.

Per label, the near-duplicate groups are put in an order given by a seeded hash of each
group's id (callers use the group's smallest sha256, so the order depends on content, not on
file names). Walking that order, a group goes to ``test`` while the running count (at the
group's centre) is below ``test * n``, then to ``val`` below ``(test + val) * n``, else to
``train``. Every label gets its share; adding k images shifts each cut point by less than k
positions, so at most about 2k existing images change split and the rest stay put.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from whichbin.config.pipeline import check_split_fractions

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSample:
    """One image as the splitter sees it.

    Attributes:
        key: Unique id returned in the result (e.g. the path inside the dataset).
        label: Class label; the split is stratified by it.
        group: Near-duplicate group id; images sharing it always land in the same split.
    """

    key: str
    label: str
    group: str


def _rank(seed: int, group: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{group}".encode()).digest()


def split_samples(
    samples: Iterable[SplitSample], val: float, test: float, seed: int
) -> dict[str, str]:
    """Assign each sample to ``train``, ``val`` or ``test``.

    Args:
        samples: Images with a unique key, a label and a near-duplicate group id.
        val: Fraction of each label for validation.
        test: Fraction of each label for test.
        seed: Changes the order groups are drawn in; same seed and samples → same split.

    Returns:
        key → split name.

    Raises:
        ValueError: On fractions ``check_split_fractions`` refuses, or duplicate keys.
    """
    check_split_fractions(val, test)
    items = list(samples)
    if len({s.key for s in items}) != len(items):
        raise ValueError("split_samples: sample keys must be unique")

    members: dict[str, list[SplitSample]] = {}
    for s in items:
        members.setdefault(s.group, []).append(s)

    # A group whose images carry different labels is counted in its most common label
    # (ties: the alphabetically first), so it still lands in exactly one split.
    by_label: dict[str, list[str]] = {}
    for group, group_items in members.items():
        counts = Counter(s.label for s in group_items)
        label = min(counts, key=lambda lb: (-counts[lb], lb))
        by_label.setdefault(label, []).append(group)

    result: dict[str, str] = {}
    for label in sorted(by_label):
        groups = sorted(by_label[label], key=lambda g: (_rank(seed, g), g))
        n = sum(len(members[g]) for g in groups)
        test_cut, val_cut = test * n, (test + val) * n
        position = 0.0
        for g in groups:
            size = len(members[g])
            centre = position + size / 2
            split = "test" if centre < test_cut else "val" if centre < val_cut else "train"
            for s in members[g]:
                result[s.key] = split
            position += size
    return result
