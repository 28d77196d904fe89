"""A model version as readable lines for ``whichbin registry show``. Pure: a version's
record in, (key, value) rows of plain text out; the CLI prints them (``--json`` keeps the
full record).

Every value is one unbroken string: paths and hashes are never split, so the view reads the
same at any terminal width.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from whichbin.registry.base import ModelVersion, Registry, RegistryEvent

Row = tuple[str, str]  # (key, value); a value spilling over several rows repeats key ""
Section = tuple[str, list[Row]]  # (title, rows); the first section's title is the heading


def live_ids(registry: Registry, names: Iterable[str]) -> set[str]:
    """Ids of each name's live version: its current approval, the version the fleet's
    retained deployment carries (an approval publishes it; approving again rolls back)."""
    out = set()
    for name in set(names):
        current = registry.latest_approved(name)
        if current is not None:
            out.add(current.id)
    return out


def format_value(value: Any) -> str:
    """One value as short text: 3-decimal floats, ``k v, k v`` for a flat mapping."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, Mapping) and all(_scalar(v) for v in value.values()):
        return ", ".join(f"{k} {format_value(v)}" for k, v in value.items())
    if isinstance(value, Sequence) and all(_scalar(v) for v in value):
        return ", ".join(format_value(v) for v in value)
    return json.dumps(value, separators=(", ", ": "), default=str)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def mapping_rows(mapping: Mapping[str, Any]) -> list[Row]:
    """A key per row; a list of paths or a mapping of mappings spills over several rows."""
    rows: list[Row] = []
    for key, value in mapping.items():
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            rows += [(key if i == 0 else "", v) for i, v in enumerate(value)]
        elif isinstance(value, Mapping) and value and not all(_scalar(v) for v in value.values()):
            rows += [
                (key if i == 0 else "", f"{k}: {format_value(v)}")
                for i, (k, v) in enumerate(value.items())
            ]
        else:
            rows.append((key, format_value(value)))
    return rows


def version_sections(
    version: ModelVersion, history: Sequence[RegistryEvent], live: bool = False
) -> list[Section]:
    """The heading and the record, metrics, lineage and history sections of a version.

    Per-source metrics are left out: the CLI shows them as a table.
    """
    v = version
    heading = f"{v.id}  {v.status.value}  gate {v.gate}" + ("  (live)" if live else "")
    record: list[Row] = [
        ("created", v.created),
        ("sha256", v.sha256),
        ("artifact", v.artifact),
        ("size", _size(v.size_bytes)),
        ("report", v.report or "–"),
    ]
    record += [("gate reasons" if i == 0 else "", r) for i, r in enumerate(v.reasons)]
    if v.approved_by:
        note = f" ({v.note})" if v.note else ""
        record.append(("approved", f"by {v.approved_by} at {v.approved_at}{note}"))
    if v.rejected_reason:
        who = f"by {v.rejected_by or '–'} at {v.rejected_at}"
        record.append(("rejected", f"{who}: {v.rejected_reason}"))
    metrics = {k: m for k, m in v.metrics.items() if k != "per_source"}
    events = [(e.at, f"{e.action} by {e.by}" + (f": {e.note}" if e.note else "")) for e in history]
    return [
        (heading, record),
        ("metrics", mapping_rows(metrics)),
        ("lineage", mapping_rows(v.lineage)),
        ("history", events),
    ]


def _size(n: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({n} bytes)"
    return f"{n} bytes"


def render_rows(rows: Sequence[Row], indent: str = "  ") -> list[str]:
    """Rows as lines, the keys padded to one column."""
    width = max((len(k) for k, _ in rows), default=0)
    return [f"{indent}{k:<{width}}  {val}".rstrip() for k, val in rows]
