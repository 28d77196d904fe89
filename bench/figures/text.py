"""Formatting shared by the figure blocks: shares, {mean, std} shares, headings, tables."""

from __future__ import annotations

from collections.abc import Callable

Loader = Callable[[str], dict | None]
"""``load("real_world")``: bench/results/real_world.json, or None when it is missing."""


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def pm(s: dict | None) -> str:
    """``95.0 ± 0.8 %`` of a {mean, std} share (``–`` when there is none)."""
    if not s:
        return "–"
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f} %"


def head(title: str, d: dict) -> list[str]:
    """A table's bold title with when, where and the command that produced it."""
    return [f"**{title}** ({d['when']}, {d['machine']['cores']} cores): `{d['command']}`", ""]


def columns(header: str) -> list[str]:
    """A Markdown table's header row ``| a | b |`` and its ``|---|---|`` rule."""
    return [header, "|" + "---|" * (header.count("|") - 1)]


def recalls(r: dict) -> str:
    """Per-bin recall, compost / landfill / recycling (a share or a {mean, std} share)."""
    return " / ".join(
        (pct(v["mean"]) if isinstance(v, dict) else pct(v)) if v is not None else "–"
        for v in (r.get(b) for b in ("compost", "landfill", "recycling"))
    )
