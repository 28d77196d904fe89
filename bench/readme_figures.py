"""Copy benchmark figures from bench/results/*.json into the docs, so no figure is typed.

Each generated block sits between ``<!-- figures:NAME:start -->`` and
``<!-- figures:NAME:end -->`` markers: the tables in docs/figures.md, the sentences that
quote figures there and in README.md. ``--check`` writes nothing and exits 1, naming the
file and block, when what it would write differs from what is there (CI runs it).

Usage: python bench/readme_figures.py [--check] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from figures.operations import edge_block  # noqa: E402
from figures.sentences import expect_block, findings_block  # noqa: E402
from figures.tables import tables_block  # noqa: E402
from figures.text import Loader  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def results_loader(results: Path) -> Loader:
    """``load(name)``: ``results/<name>.json``, or None when it is missing."""

    def load(name: str) -> dict | None:
        p = results / f"{name}.json"
        return json.loads(p.read_text()) if p.is_file() else None

    return load


# file → block name → the block's lines
BLOCKS: dict[str, dict[str, Callable[[Loader], list[str]]]] = {
    "README.md": {"expect": expect_block},
    "docs/figures.md": {"tables": tables_block, "findings": findings_block},
    "docs/operations.md": {"edge": edge_block},
}
MARKER = re.compile(r"<!-- figures:([\w-]+):(start|end) -->")


def _between(text: str, block: str) -> str:
    start, end = f"<!-- figures:{block}:start -->", f"<!-- figures:{block}:end -->"
    return text.split(start, 1)[1].split(end, 1)[0]


def render(
    text: str, blocks: dict[str, Callable[[Loader], list[str]]], name: str, load: Loader
) -> str:
    """``text`` with every generated block rewritten; each block must appear exactly once."""
    found = [m.group(1) for m in MARKER.finditer(text) if m.group(2) == "start"]
    ends = [m.group(1) for m in MARKER.finditer(text) if m.group(2) == "end"]
    if sorted(found) != sorted(blocks) or sorted(ends) != sorted(blocks):
        raise SystemExit(f"{name}: generated blocks {sorted(found)}, expected {sorted(blocks)}")
    for block, make in blocks.items():
        i = text.index(f"<!-- figures:{block}:start -->") + len(f"<!-- figures:{block}:start -->")
        j = text.index(f"<!-- figures:{block}:end -->", i)
        text = text[:i] + "\n" + "\n".join(make(load)) + "\n" + text[j:]
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    ap.add_argument("--root", type=Path, default=ROOT, help="repository root (tests)")
    args = ap.parse_args(argv)
    load = results_loader(args.root / "bench" / "results")
    stale = []
    for name, blocks in BLOCKS.items():
        path = args.root / name
        text = path.read_text()
        new = render(text, blocks, name, load)
        if new == text:
            continue
        if args.check:
            changed = [b for b in blocks if _between(text, b) != _between(new, b)]
            stale.append(f"{name}: figures differ from bench/results/*.json in {changed}")
        else:
            path.write_text(new)
            print(f"wrote {name}")
    for line in stale:
        print(line, file=sys.stderr)
    if stale:
        print("run: python bench/readme_figures.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
