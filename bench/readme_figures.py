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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def pipeline_section(d: dict, title: str = "Full pipeline on all of ../shared/data") -> list[str]:
    c = d["cold"]
    m = c["metrics"]
    recall = ", ".join(f"{b} {_pct(v)}" for b, v in sorted(m["bin_recall"].items()))
    lines = [
        f"**{title}** ({d['when']}, {d['machine']['cores']} cores, "
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
    ]
    if "warm_rerun" in d:
        lines.append(
            f"- re-run with nothing changed: {d['warm_rerun']['wall_seconds']} s wall; "
            f"after adding 30 photos: {d['add_30_photos']['wall_seconds']} s wall"
            + (" (a model approved)" if "base_model_default" in d else "")
        )
    b = d.get("base_model_default")
    if b:
        lines.append(
            f"- `--base-model default` (the bundled model's backbone, no torch; a model "
            f"approved): first run {b['cold']['wall_seconds']} s (embedding "
            f"{b['cold']['timings']['embed']['seconds']} s), bin accuracy "
            f"{_pct(b['cold']['metrics']['bin_accuracy'])}; nothing changed "
            f"{b['warm_rerun']['wall_seconds']} s; "
            f"+30 photos {b['add_30_photos']['wall_seconds']} s"
        )
    return lines


def _head(title: str, d: dict) -> list[str]:
    return [f"**{title}** ({d['when']}, {d['machine']['cores']} cores): `{d['command']}`", ""]


def int8_section(d: dict) -> list[str]:
    lines = _head("INT8 vs FP32 and latency per frame (batch 1)", d)
    lines += [
        f"- test split {d['test_images']} images: FP32 accuracy {_pct(d['fp32']['accuracy'])} "
        f"({d['fp32']['bytes'] / 1e6:.1f} MB); "
        + "; ".join(
            f"INT8 {k} {_pct(v['accuracy'])} "
            f"(−{v['loss_points']} points, {v['bytes'] / 1e6:.1f} MB)"
            for k, v in d["int8"].items()
        ),
        "",
        "| engine | threads | p50 ms | p90 ms | speed-up vs PyTorch eager |",
        "|---|---|---|---|---|",
    ]
    for k, v in d["latency_batch1"].items():
        engine, threads = k.rsplit("_", 1)
        lines.append(
            f"| {engine} | {threads[:-1]} | {v['p50_ms']:.1f} | {v['p90_ms']:.1f} | "
            f"{v.get('speedup_vs_torch', 'reference')} |"
        )
    if d.get("ablation"):
        lines += [
            "",
            f"The INT8 recipe step by step ({d['ablation_images']}):",
            "",
            "| step | embedding cosine to FP32 (mean / min) | latency p50, 1 thread |",
            "|---|---|---|",
        ]
        lines += [
            f"| {a['step']} | {a['cosine_mean']:.4f} / {a['cosine_min']:.4f} | "
            f"{a['latency_1t']['p50_ms']:.1f} ms |"
            for a in d["ablation"]
        ]
    return lines


def fewshot_section(d: dict) -> list[str]:
    lines = _head(f"Few-shot adaptation to a held-out source ({d['holdout_source']})", d)
    lines += [
        "| K photos per bin | balanced bin accuracy | bin accuracy | logistic-regression "
        "reference (balanced) | adaptation time (s) |",
        "|---|---|---|---|---|",
    ]
    for c in d["curve"]:
        lines.append(
            f"| {c['k_per_bin']} | {_pct(c['balanced_bin_accuracy_mean'])} ± "
            f"{100 * c['balanced_bin_accuracy_std']:.1f} | {_pct(c['bin_accuracy_mean'])} | "
            f"{_pct(c['reference_logreg_balanced_bin_accuracy_mean'])} | "
            f"{c['adapt_seconds_mean']:.1f} |"
        )
    return lines


def edge_fps_section(d: dict) -> list[str]:
    lines = _head("Edge frames per second and latency (video file, bundled model)", d)
    lines += [
        "| run | fps | frames classified | events (right bins) | event latency p50 / p99 ms |",
        "|---|---|---|---|---|",
    ]
    for k, r in d["results"].items():
        lat = r.get("event_latency_received_ms", {})
        lines.append(
            f"| {k} | {r['fps']:.1f} | {r['classified']}/{r['frames']} | {r['received']} "
            f"({'yes' if r.get('bins_right') else 'no'}) | {lat.get('p50', 0):.0f} / "
            f"{lat.get('p99', 0):.0f} |"
        )
    return lines


def soak_section(d: dict) -> list[str]:
    r = d["rss_mb"]
    e = d["edge_summary"]
    return _head(f"Edge soak, {d['duration_s'] / 60:.0f} minutes", d) + [
        f"- RSS {r['start']} MB at {r['start_at_s']:.0f} s → {r['end']} MB at the end "
        f"(max {r['max']} MB); threads {d['threads']['start']} → {d['threads']['end']}, "
        f"open files {d['open_files']['start']} → {d['open_files']['end']}",
        f"- {e['frames']} frames at {e['fps']} fps, {e['events']} events sent, "
        f"{d['events_unique']} received once each, {d['events_lost']} lost, {e['errors']} errors",
    ]


def finetune_section(d: dict) -> list[str]:
    lines = _head("TrashNet: head vs fine-tuning, in-source and cross-source", d)
    lines += [
        f"{d.get('dataset', '')}; cross-source: {d.get('cross_source', '')}",
        "",
        "Rows with more seeds first, then best first; 1-seed rows are seed 0 only. An "
        "ensemble run that reused members of a smaller one (resumed from their checkpoints) "
        "has a short run wall: the epochs column is the training time of every member.",
        "",
        "| method | seeds | test accuracy (per seed) | test bin accuracy | cross-source bin "
        "accuracy | cross-source bin recall | training images | training epochs, all members "
        "(s) | run wall (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = sorted(
        d["summary"].items(),
        key=lambda kv: (-len(kv[1]["seeds"]), -kv[1]["test.accuracy"]["mean"]),
    )
    for method, m in rows:
        acc, bacc = m["test.accuracy"], m["test.bin_accuracy"]
        xs = m.get("cross_source.bin_accuracy", {"mean": float("nan")})
        rec = ", ".join(f"{b} {_pct(v)}" for b, v in m.get("cross_source.bin_recall", {}).items())
        seeds = acc.get("per_seed", [])
        per = f" ({' / '.join(f'{100 * v:.1f}' for v in seeds)})" if len(seeds) > 1 else ""
        lines.append(
            f"| {method} | {len(m['seeds'])} | {_pct(acc['mean'])} ± {100 * acc['std']:.1f}{per} "
            f"| {_pct(bacc['mean'])} | {_pct(xs['mean'])} | {rec} | "
            f"{m.get('train_images', '')} | {m.get('epoch_seconds_mean') or 0:.0f} | "
            f"{m.get('seconds_mean', 0):.0f} |"
        )
    return lines


def finetune_all_section(d: dict) -> list[str]:
    t = d["test"]
    recall = ", ".join(f"{b} {_pct(v)}" for b, v in sorted(t["bin_recall"].items()))
    sec = d["finetune_seconds"]
    p = d["params"]  # training config keys since the fine-tuning split; older results: short
    epochs, views = (
        p.get("finetune_epochs", p.get("epochs")),
        p.get("augment_views", p.get("views")),
    )
    return _head("Partial fine-tuning on all of ../shared/data", d) + [
        f"- {d['images']['train']} training images, {epochs} epochs, "
        f"{views} augmented views: {d['finetune_wall_seconds']:.0f} s wall "
        f"(activation cache {sec['cache']:.0f} s, training {sec['train']:.0f} s)",
        f"- test ({t['n']} images): accuracy {_pct(t['accuracy'])}, macro-F1 "
        f"{_pct(t['macro_f1'])}, bin accuracy {_pct(t['bin_accuracy'])}; per-bin recall: {recall}",
    ]


def bundle_latency_section(d: dict) -> list[str]:
    ref = d["reference"]
    lines = _head("What each TrashNet recipe costs per frame (seed-0 bundles)", d)
    lines += [
        f"ONNX Runtime, batch 1; reference: PyTorch eager on the plain Lite0 backbone at 224 px, "
        f"{ref['torch_eager_1t']['p50_ms']:.1f} ms at 1 thread and "
        f"{ref['torch_eager_2t']['p50_ms']:.1f} ms at 2 threads in the same run.",
        "",
        "| method | accuracy (3 seeds) | members | flip TTA | input | p50 1 thread | "
        "p50 2 threads | × eager (1 thread) | size |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = sorted(d["methods"].items(), key=lambda kv: kv[1]["ort_1t"]["p50_ms"])
    for method, r in rows:
        acc = r.get("accuracy_mean")
        lines.append(
            f"| {method} | {_pct(acc) if acc is not None else ''} | {r['members']} | "
            f"{'yes' if r['tta_flip'] else 'no'} | {r['input_size']} | "
            f"{r['ort_1t']['p50_ms']:.1f} ms | {r['ort_2t']['p50_ms']:.1f} ms | "
            f"{r['ort_1t']['x_torch_eager']:.2f} | {r['bytes'] / 1e6:.1f} MB |"
        )
    skipped = d.get("skipped", {})
    lines += [""] if skipped else []
    lines += [f"- {method}: not measured ({why})" for method, why in skipped.items()]
    return lines


def backbones_section(d: dict) -> list[str]:
    lines = _head(f"Backbones as frozen feature extractors, {d['dataset']}", d)
    lines += [
        "| backbone | input | numpy head accuracy | logistic-regression reference | "
        "latency p50 (1 thread) | ONNX size |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in d["results"].items():
        lines.append(
            f"| {name} | {r['input_size']} | {_pct(r['head_accuracy_mean'])} ± "
            f"{100 * r['head_accuracy_std']:.1f} | {_pct(r['logreg_accuracy_mean'])} ± "
            f"{100 * r['logreg_accuracy_std']:.1f} | {r['latency_1thread']['p50_ms']:.1f} ms | "
            f"{r['backbone_onnx_bytes'] / 1e6:.1f} MB |"
        )
    return lines


def _ms(s: dict | None) -> str:
    """``mean ± std %`` of a {mean, std} share."""
    if not s:
        return "–"
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f} %"


def _recalls(r: dict) -> str:
    return " / ".join(
        (_pct(v["mean"]) if isinstance(v, dict) else _pct(v)) if v is not None else "–"
        for v in (r.get(b) for b in ("compost", "landfill", "recycling"))
    )


def real_world_section(d: dict) -> list[str]:
    ins = d["in_source_test"]
    lines = [
        *_head("Real-world accuracy: a source held out of training", d),
        f"- in-source (all-data test split, {ins['runs'][0]['n']} images): bin accuracy "
        f"{_ms(ins['bin_accuracy'])}, decided {_ms(ins.get('coverage'))} of items, of which "
        f"{_ms(ins.get('decided_accuracy'))} correct",
        "",
        "| held out (trained on everything else) | images | bin accuracy | recall compost / "
        "landfill / recycling | decided | decided correct | logistic regression |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in d["held_out"]:
        z, ref = h["zero_shot"], h["zero_shot_reference_logreg"]
        lines.append(
            f"| {h['held_out']} (zero-shot) | {h['images']} | {_ms(z['bin_accuracy'])} | "
            f"{_recalls(z['bin_recall'])} | {_ms(z.get('coverage'))} | "
            f"{_ms(z.get('decided_accuracy'))} | {_pct(ref['bin_accuracy'])} |"
        )
    lines += [
        "",
        "A site's own photos (K per bin, filed as joystick corrections: a bin, no label; "
        "3 random draws), head-only update without torch, bin accuracy on the rest of that "
        "source:",
        "",
        "| held out | K per bin | bin accuracy | recall compost / landfill / recycling | "
        "update time | other sources' test bin accuracy after it | logistic regression |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in d["held_out"]:
        for f in h["few_shot"]:
            secs = f.get("seconds", {}).get("mean")
            lines.append(
                f"| {h['held_out']} | {f['k_per_bin']} | {_ms(f['bin_accuracy'])} | "
                f"{_recalls(f['bin_recall'])} | {secs:.1f} s | "
                f"{_ms(f.get('other_sources_test_bin_accuracy'))} | "
                f"{_ms(f['reference_logreg'].get('bin_accuracy'))} |"
            )
    return lines


def edge_drops_section(d: dict) -> list[str]:
    lines = [
        *_head("The edge on drop scenes built from real/ photos", d),
        f"- model: {d['model']['version']} (never trained on real/); {d['photos']['items']} "
        f"photos composited at {d['scene']['area'][0]:.0%}–{d['scene']['area'][1]:.0%} of the "
        f"frame on {', '.join(d['scene']['backgrounds'])} backgrounds",
        "",
        "| mode | exactly one event per item | event bin accuracy | photo-level bin accuracy "
        "| gap (points) |",
        "|---|---|---|---|---|",
    ]
    for mode, m in d["modes"].items():
        lines.append(
            f"| {mode} | {m['exactly_one_event']:.1f} % | {m['event_bin_accuracy']:.1f} % | "
            f"{m['photo_bin_accuracy']:.1f} % | {m['gap_points']:+.1f} |"
        )
    return lines


def default_latency_section(d: dict) -> list[str]:
    b = d["bundles"]
    lines = [
        *_head("The bundled default model against the previous one (batch 1)", d),
        f"- {b['current']['version']}: {b['current']['bytes'] / 1e6:.1f} MB, "
        f"{b['current']['labels']} labels; {b['baseline']['version']}: "
        f"{b['baseline']['bytes'] / 1e6:.1f} MB, {b['baseline']['labels']} labels",
        "",
        "| threads | current p50 | previous p50 | current / previous | PyTorch eager p50 |",
        "|---|---|---|---|---|",
    ]
    for t, row in d["latency"].items():
        lines.append(
            f"| {t[:-1]} | {row['current']['p50_ms']:.1f} ms | {row['baseline']['p50_ms']:.1f} ms "
            f"| {row['current_vs_baseline']:.2f}× | {row['torch_eager']['p50_ms']:.1f} ms |"
        )
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


def tables_block() -> list[str]:
    """Every benchmark's table, in reading order."""
    lines: list[str] = []
    d = _load("pipeline_full")
    if d:
        title = (
            "Full pipeline on all of ../shared/data (its table: Lite0 exported from PyTorch "
            "weights, `training.base_model: null`, the default when this ran; today's default "
            "is its `--base-model default` line)"
        )
        lines += pipeline_section(d, title) + [""]
    titles = {
        "pipeline_accurate": "The accurate preset (configs/accurate.yaml) through the pipeline, "
        "all data",
        "pipeline_accurate_head": "Head-only retrains on the accurate model's fine-tuned backbone "
        "(`--base-model`), all data",
    }
    for name, title in titles.items():
        d = _load(name)
        if d:
            lines += pipeline_section(d, title) + [""]
    special = {
        "int8_latency": int8_section,
        "fewshot": fewshot_section,
        "finetune_compare": finetune_section,
        "backbones": backbones_section,
        "finetune_all_data": finetune_all_section,
        "bundle_latency": bundle_latency_section,
        "edge_fps": edge_fps_section,
        "edge_soak": soak_section,
        "edge_soak_30min": soak_section,
        "real_world": real_world_section,
        "edge_drops": edge_drops_section,
        "default_latency": default_latency_section,
    }
    names = ("real_world", "edge_drops", "default_latency", "int8_latency", "fewshot")
    names = (*names, "backbones", "finetune_compare", "finetune_all_data")
    names = (*names, "bundle_latency", "edge_fps")
    for name in (*names, "edge_soak", "edge_soak_30min"):
        d = _load(name)
        if d:
            section = special.get(name)
            lines += (section(d) if section else generic_section(name, d)) + [""]
    return lines[:-1] if lines and lines[-1] == "" else lines


# -- sentences that quote figures ------------------------------------------------------


def _pm(s: dict) -> str:
    """``95.0 ± 0.8 %`` of a {mean, std} share."""
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f} %"


def expect_block() -> list[str]:
    """README, "Teach it your bins": what a site's own photos buy (real_world.json)."""
    d = _load("real_world")
    if not d:
        return []
    h = next(h for h in d["held_out"] if h["held_out"] == "takeaway")
    few = {f["k_per_bin"]: f for f in h["few_shot"]}
    secs = [f["seconds"]["mean"] for f in h["few_shot"]]
    other = min(f["other_sources_test_bin_accuracy"]["mean"] for f in h["few_shot"])
    ins = d["in_source_test"]["bin_accuracy"]["mean"]
    ks = sorted(few)
    steps = ", ".join(f"{_pct(few[k]['bin_accuracy']['mean'])} with {k}" for k in ks[:-1])
    return [
        f"**What to expect** (`{d['command']}`, {d['when'][:10]}; tables in "
        "[docs/figures.md](docs/figures.md)): on real/takeaway, a place the model never saw, "
        f"bin accuracy is {_pct(h['zero_shot']['bin_accuracy']['mean'])} zero-shot, "
        f"{steps.replace(' with ' + str(ks[0]), ' with ' + str(ks[0]) + ' photos per bin', 1)} "
        f"and {_pct(few[ks[-1]]['bin_accuracy']['mean'])} with {ks[-1]}; each update takes "
        f"{min(secs):.1f}–{max(secs):.1f} s on a {d['machine']['cores']}-core machine, and the "
        f"other sources' test bin accuracy stays within {100 * (ins - other):.1f} points "
        f"({_pct(other)} against {_pct(ins)}).",
    ]


def findings_block() -> list[str]:
    """docs/figures.md, "What the figures say": the choices the figures justify."""
    bb, fc, bl = _load("backbones"), _load("finetune_compare"), _load("bundle_latency")
    pf, pa, ph = _load("pipeline_full"), _load("pipeline_accurate"), _load("pipeline_accurate_head")
    ftall, rw, rc, i8 = (
        _load("finetune_all_data"),
        _load("real_world"),
        _load("real_world_composites"),
        _load("int8_latency"),
    )
    out: list[str] = []
    if bb and fc:
        heads = [r["head_accuracy_mean"] for r in bb["results"].values()]
        s = fc["summary"]
        out += [
            f"- **Backbone** (`{bb['command']}`, `{fc['command']}`): as frozen feature "
            f"extractors Lite0, Lite1 and Lite2 tie ({100 * min(heads):.1f}–"
            f"{100 * max(heads):.1f} % on {bb['dataset']}), so the head-only default uses "
            "Lite0, the fastest and smallest; fine-tuned, Lite2 is the most accurate single "
            f"model ({_pm(s[ACCURATE]['test.accuracy'])} against "
            f"{_pm(s[LITE0_TUNED]['test.accuracy'])} for Lite0 fine-tuned the same way at "
            f"224 px, `{LITE0_TUNED}`), which is what `configs/accurate.yaml` uses.",
        ]
    if fc and bl:
        s, m = fc["summary"], bl["methods"]

        def ms(method: str) -> str:
            return f"{m[method]['ort_1t']['p50_ms']:.1f} ms"

        acc = s[ACCURATE]
        per = " / ".join(f"{100 * v:.1f}" for v in acc["test.accuracy"]["per_seed"])
        out += [
            f"- **Accuracy on TrashNet** ({len(acc['seeds'])} seeds): the most accurate recipe "
            f"is `configs/accurate.yaml` (`{ACCURATE}`): **{_pm(acc['test.accuracy'])}** "
            f"({per}), bin accuracy {_pct(acc['test.bin_accuracy']['mean'])}, "
            f"{_pct(acc['cross_source.bin_accuracy']['mean'])} bin accuracy on the "
            f"cross-source composites; {ms(ACCURATE)} per frame on one thread. A four-member "
            f"Lite0 ensemble reaches {_pm(s[ENSEMBLE4]['test.accuracy'])} at {ms(ENSEMBLE4)}; "
            f"one Lite0 model {_pm(s[LITE0_TUNED]['test.accuracy'])} at {ms(LITE0_TUNED)}; the "
            f"numpy head on frozen Lite0 features {_pm(s['head']['test.accuracy'])} at "
            f"{ms('head')}.",
        ]
    if fc:
        s = fc["summary"]
        pairs = [
            (m.replace(":tta", ""), m) for m in s if ":tta" in m and m.replace(":tta", "") in s
        ]
        gain = [
            100 * (s[t]["test.accuracy"]["per_seed"][0] - s[p]["test.accuracy"]["per_seed"][0])
            for p, t in pairs
        ]
        names = ", ".join(f"`{p}`" for p, _ in pairs)
        if gain:
            out += [
                f"- **Flip TTA** (`finetune_tta_flip`): {min(gain):+.1f} to {max(gain):+.1f} "
                f"points of TrashNet test accuracy on seed 0 ({names} "
                "with and without it), for twice the inference cost.",
            ]
    if pf and pa and ph and ftall and "base_model_default" in pf:
        c, a, h = pf["base_model_default"]["cold"], pa["cold"], ph["cold"]
        out += [
            "- **The default stays head-only** (the bundled Lite0 backbone, INT8): on all of "
            f"../shared/data it reaches {_pct(c['metrics']['bin_accuracy'])} bin accuracy "
            f"({_pct(c['metrics']['accuracy'])} label) in {c['wall_seconds']:.0f} s "
            f"(`{pf['command']}`, its `--base-model default` line), against "
            f"{_pct(ftall['test']['bin_accuracy'])} for partial fine-tuning in "
            f"{ftall['finetune_wall_seconds'] / 60:.0f} minutes and "
            f"{_pct(a['metrics']['bin_accuracy'])} ({_pct(a['metrics']['accuracy'])} label, "
            f"{a['metrics']['n']} test images) for `configs/accurate.yaml` in "
            f"{a['wall_seconds'] / 60:.0f} minutes through `whichbin pipeline run`; it re-runs in "
            f"seconds when 30 photos are added "
            f"({pf['base_model_default']['add_30_photos']['wall_seconds']} s), runs "
            "on a Pi without torch, and ships INT8. Fine-tuning wins on label accuracy and on "
            "cross-source photos. Once a fine-tuned bundle exists, `--base-model` on it "
            "retrains only the head on its fine-tuned backbone and quantizes that backbone: "
            f"the first such run took {h['wall_seconds'] / 60:.0f} minutes (embedding every "
            f"photo once), adding 30 photos then {ph['add_30_photos']['wall_seconds']} s, and "
            f"the {ph['bundle_bytes'] / 1e6:.1f} MB INT8 bundle scored "
            f"{_pct(h['metrics']['accuracy'])} label and {_pct(h['metrics']['bin_accuracy'])} "
            f"bin accuracy on its {h['metrics']['n']} test images (`{ph['command']}`).",
        ]
    if rw and rc:

        def few(d: dict) -> dict:
            return {
                (h["held_out"], f["k_per_bin"]): f["bin_accuracy"]["mean"]
                for h in d["held_out"]
                for f in h["few_shot"]
            }

        def zero(d: dict, name: str) -> float:
            h = next(h for h in d["held_out"] if h["held_out"] == name)
            return h["zero_shot"]["bin_accuracy"]["mean"]

        lost = [100 * (few(rw)[k] - v) for k, v in few(rc).items()]
        out += [
            f"- **Composites for the head** (`training.head_composites`, off by default; "
            f"`{rc['command']}`): real/takeaway zero-shot "
            f"{100 * (zero(rc, 'takeaway') - zero(rw, 'takeaway')):+.1f} points "
            f"({_pct(zero(rc, 'takeaway'))}), real/household "
            f"{100 * (zero(rc, 'household') - zero(rw, 'household')):+.1f}, the all-data test "
            f"split {_pct(rc['in_source_test']['bin_accuracy']['mean'])} bin accuracy against "
            f"{_pct(rw['in_source_test']['bin_accuracy']['mean'])}, and every few-shot figure "
            f"{min(lost):.1f}–{max(lost):.1f} points lower: it did not pay overall.",
        ]
    if i8 and i8.get("ablation"):
        ab = i8["ablation"]
        out += [
            "- **INT8** (`training/quantize.py`): the recipe's steps take the INT8 embedding's "
            f"cosine to the FP32 one from {ab[0]['cosine_mean']:.2f} to "
            f"{ab[-1]['cosine_mean']:.3f} (the INT8 table below), so the INT8 bundle keeps "
            "the FP32 "
            "head (a head trained on INT8 features measured no better).",
        ]
    return out


ACCURATE = "partial:b4:e12:tta:lite2:last:val0.05"  # configs/accurate.yaml's recipe
LITE0_TUNED = "partial:b4:e12:tta"  # the same recipe on Lite0 at 224 px
ENSEMBLE4 = "partial:b4:e12:tta:n4:last:val0.05"

# file → block name → the block's lines
BLOCKS: dict[str, dict[str, Callable[[], list[str]]]] = {
    "README.md": {"expect": expect_block},
    "docs/figures.md": {"tables": tables_block, "findings": findings_block},
}
MARKER = re.compile(r"<!-- figures:([\w-]+):(start|end) -->")


def _between(text: str, block: str) -> str:
    start, end = f"<!-- figures:{block}:start -->", f"<!-- figures:{block}:end -->"
    return text.split(start, 1)[1].split(end, 1)[0]


def render(text: str, blocks: dict[str, Callable[[], list[str]]], name: str) -> str:
    """``text`` with every generated block rewritten; each block must appear exactly once."""
    found = [m.group(1) for m in MARKER.finditer(text) if m.group(2) == "start"]
    ends = [m.group(1) for m in MARKER.finditer(text) if m.group(2) == "end"]
    if sorted(found) != sorted(blocks) or sorted(ends) != sorted(blocks):
        raise SystemExit(f"{name}: generated blocks {sorted(found)}, expected {sorted(blocks)}")
    for block, make in blocks.items():
        i = text.index(f"<!-- figures:{block}:start -->") + len(f"<!-- figures:{block}:start -->")
        j = text.index(f"<!-- figures:{block}:end -->", i)
        text = text[:i] + "\n" + "\n".join(make()) + "\n" + text[j:]
    return text


def main(argv: list[str] | None = None) -> int:
    global RESULTS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    ap.add_argument("--root", type=Path, default=ROOT, help="repository root (tests)")
    args = ap.parse_args(argv)
    RESULTS = args.root / "bench" / "results"
    stale = []
    for name, blocks in BLOCKS.items():
        path = args.root / name
        text = path.read_text()
        new = render(text, blocks, name)
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
