"""Pictures people would rather see than read: confusion matrix, reliability diagram and
training curves as PNG, tied together in an HTML report."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: list[list[int]], labels: list[str], out: Path, title: str) -> Path:
    plt = _plt()
    a = np.asarray(cm, dtype=float)
    norm = a / np.maximum(a.sum(1, keepdims=True), 1)
    size = max(4.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if a[i, j]:
                ax.text(
                    j,
                    i,
                    int(a[i, j]),
                    ha="center",
                    va="center",
                    color="white" if norm[i, j] > 0.5 else "black",
                    fontsize=8,
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_reliability(rel: dict[str, list[float]], ece: float, out: Path) -> Path:
    plt = _plt()
    edges = np.asarray(rel["edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    cnt = np.asarray(rel["count"])
    m = cnt > 0
    ax.bar(
        centers[m],
        np.asarray(rel["accuracy"])[m],
        width=edges[1] - edges[0],
        edgecolor="black",
        alpha=0.7,
        label="accuracy",
    )
    ax.plot(
        np.asarray(rel["confidence"])[m],
        np.asarray(rel["accuracy"])[m],
        "o-",
        color="C1",
        label="mean confidence",
    )
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_curves(history: dict[str, list[float]], out: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, values in history.items():
        if values:
            ax.plot(range(1, len(values) + 1), values, label=key)
    ax.set_xlabel("epoch")
    ax.set_title("Training curves")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_report(
    out_dir: Path,
    title: str,
    sections: dict[str, Any],
    images: dict[str, str],
    per_source: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """index.html with the figures, a per-source table (when given) and a metrics table;
    returns its path."""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td><pre>{html.escape(_fmt(v))}</pre></td></tr>"
        for k, v in sections.items()
    )
    figs = "".join(
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(name)}">'
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, src in images.items()
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;margin:1em}"
        "img{max-width:520px}th{text-align:left;vertical-align:top;padding-right:1em}"
        "pre{margin:0}table.per-source td,table.per-source th{padding:0.2em 0.8em;"
        "border-bottom:1px solid #ddd}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{figs}{per_source_table(per_source or {})}"
        f"<table>{rows}</table></body></html>"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(page)
    return path


def per_source_table(per_source: dict[str, dict[str, Any]]) -> str:
    """The test split per data source as an HTML table ("" when there is none)."""
    from whichbin.evaluation.per_source import PER_SOURCE_COLUMNS, per_source_rows

    if not per_source:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in PER_SOURCE_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in per_source_rows(per_source)
    )
    return (
        "<h2>Test split per data source</h2><p>Percentages: accuracy by label and by bin, "
        "recall per bin (compost / landfill / recycling), share decided and decided correct."
        "</p>"
        f"<table class='per-source'><tr>{head}</tr>{body}</table>"
    )


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, indent=1, default=str)
    return str(v)
