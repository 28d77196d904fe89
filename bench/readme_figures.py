"""Copy benchmark figures from bench/results/*.json into README.md (between the
``<!-- figures:start -->`` and ``<!-- figures:end -->`` markers), so no figure is typed.

Usage: python bench/readme_figures.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def pipeline_section(d: dict) -> list[str]:
    c = d["cold"]
    m = c["metrics"]
    recall = ", ".join(f"{b} {_pct(v)}" for b, v in sorted(m["bin_recall"].items()))
    lines = [
        f"**Full pipeline on all of ../shared/data** ({d['when']}, {d['machine']['cores']} cores, "
        f"commit {d['machine']['commit']}): `{d['command']}`",
        "",
        "| step | cold run (s) |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v['seconds']} |" for k, v in c["timings"].items()]
    int8 = m.get("int8", {})
    lines += [
        f"| **total wall** | **{c['wall_seconds']}** |",
        "",
        f"- test split: {m['n']} images; label accuracy {_pct(m['accuracy'])}, macro-F1 "
        f"{_pct(m['macro_f1'])}, **bin accuracy {_pct(m['bin_accuracy'])}**; "
        f"per-bin recall: {recall}",
        f"- calibration: temperature {m['temperature']:.2f}, ECE {m['ece']:.3f} (bins "
        f"{m['bin_ece']:.3f}); unsure threshold {m['threshold']:.2f} leaves coverage "
        f"{_pct(m['coverage'])} with decided items {_pct(m['decided_accuracy'])} correct on test",
        f"- gate: **{c['gate']}** {c['reasons'] or ''}; registered as `{c['version']}`",
        f"- bundle: {c.get('bundle_bytes', d.get('bundle_bytes', 0)) / 1e6:.1f} MB"
        + (
            f" ({'INT8 shipped' if int8.get('shipped') else 'FP32 kept'}: INT8 accuracy "
            f"{_pct(int8['int8_accuracy'])} vs FP32 {_pct(int8['fp32_accuracy'])})"
            if "int8_accuracy" in int8 and "fp32_accuracy" in int8
            else ""
        ),
        f"- re-run with nothing changed: {d['warm_rerun']['wall_seconds']} s wall; "
        f"after adding 30 photos: {d['add_30_photos']['wall_seconds']} s wall",
    ]
    return lines


def generic_section(name: str, d: dict) -> list[str]:
    body = {k: v for k, v in d.items() if k not in ("machine", "benchmark", "command", "when")}
    return [
        f"**{name}** ({d['when']}): `{d['command']}`",
        "",
        "```json",
        json.dumps(body, indent=1)[:3000],
        "```",
    ]


def main() -> None:
    lines: list[str] = []
    d = _load("pipeline_full")
    if d:
        lines += pipeline_section(d) + [""]
    for name in (
        "int8_latency",
        "backbones",
        "fewshot",
        "finetune_compare",
        "edge_fps",
        "edge_soak",
    ):
        d = _load(name)
        if d:
            lines += generic_section(name, d) + [""]
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- figures:start -->", "<!-- figures:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + tail)


if __name__ == "__main__":
    main()
