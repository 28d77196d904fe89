"""One Markdown table (or list) per benchmark result, and the block of them all in
docs/figures.md."""

from __future__ import annotations

import json

from figures.text import Loader, columns, head, pct, pm, recalls


def pipeline_section(d: dict, title: str = "Full pipeline on all of ../shared/data") -> list[str]:
    c = d["cold"]
    m = c["metrics"]
    recall = ", ".join(f"{b} {pct(v)}" for b, v in sorted(m["bin_recall"].items()))
    lines = [
        f"**{title}** ({d['when']}, {d['machine']['cores']} cores, "
        f"commit {d['machine']['commit']}): `{d['command']}`",
        "",
        *columns("| step | cold run (s) |"),
    ]
    lines += [f"| {k} | {v['seconds']} |" for k, v in c["timings"].items()]
    int8 = m.get("int8", {})
    lines += [
        f"| **total wall** | **{c['wall_seconds']}** |",
        "",
        f"- test split: {m['n']} images; label accuracy {pct(m['accuracy'])}, macro-F1 "
        f"{pct(m['macro_f1'])}, **bin accuracy {pct(m['bin_accuracy'])}**; "
        f"per-bin recall: {recall}",
        f"- calibration: temperature {m['temperature']:.2f}, ECE {m['ece']:.3f} (bins "
        f"{m['bin_ece']:.3f}); unsure threshold {m['threshold']:.2f} leaves coverage "
        f"{pct(m['coverage'])} with decided items {pct(m['decided_accuracy'])} correct on test",
        f"- gate: **{c['gate']}** {c['reasons'] or ''}; registered as `{c['version']}`",
        f"- bundle: {c.get('bundle_bytes', d.get('bundle_bytes', 0)) / 1e6:.1f} MB"
        + (
            f" ({'INT8 shipped' if int8.get('shipped') else 'FP32 kept'}: INT8 accuracy "
            f"{pct(int8['int8_accuracy'])} vs FP32 {pct(int8['fp32_accuracy'])})"
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
            f"{pct(b['cold']['metrics']['bin_accuracy'])}; nothing changed "
            f"{b['warm_rerun']['wall_seconds']} s; "
            f"+30 photos {b['add_30_photos']['wall_seconds']} s"
        )
    return lines


def int8_section(d: dict) -> list[str]:
    lines = head("INT8 vs FP32 and latency per frame (batch 1)", d)
    lines += [
        f"- test split {d['test_images']} images: FP32 accuracy {pct(d['fp32']['accuracy'])} "
        f"({d['fp32']['bytes'] / 1e6:.1f} MB); "
        + "; ".join(
            f"INT8 {k} {pct(v['accuracy'])} (−{v['loss_points']} points, {v['bytes'] / 1e6:.1f} MB)"
            for k, v in d["int8"].items()
        ),
        "",
        *columns("| engine | threads | p50 ms | p90 ms | speed-up vs PyTorch eager |"),
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
            *columns("| step | embedding cosine to FP32 (mean / min) | latency p50, 1 thread |"),
        ]
        lines += [
            f"| {a['step']} | {a['cosine_mean']:.4f} / {a['cosine_min']:.4f} | "
            f"{a['latency_1t']['p50_ms']:.1f} ms |"
            for a in d["ablation"]
        ]
    return lines


def fewshot_section(d: dict) -> list[str]:
    lines = head(f"Few-shot adaptation to a held-out source ({d['holdout_source']})", d)
    lines += [
        *columns(
            "| K photos per bin | balanced bin accuracy | bin accuracy | logistic-regression "
            "reference (balanced) | adaptation time (s) |"
        ),
    ]
    for c in d["curve"]:
        lines.append(
            f"| {c['k_per_bin']} | {pct(c['balanced_bin_accuracy_mean'])} ± "
            f"{100 * c['balanced_bin_accuracy_std']:.1f} | {pct(c['bin_accuracy_mean'])} | "
            f"{pct(c['reference_logreg_balanced_bin_accuracy_mean'])} | "
            f"{c['adapt_seconds_mean']:.1f} |"
        )
    return lines


def edge_fps_section(d: dict) -> list[str]:
    lines = head("Edge frames per second and latency (video file, bundled model)", d)
    lines += [
        *columns(
            "| run | fps | frames classified | events (right bins) | event latency p50 / p99 ms |"
        ),
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
    return head(f"Edge soak, {d['duration_s'] / 60:.0f} minutes", d) + [
        f"- RSS {r['start']} MB at {r['start_at_s']:.0f} s → {r['end']} MB at the end "
        f"(max {r['max']} MB); threads {d['threads']['start']} → {d['threads']['end']}, "
        f"open files {d['open_files']['start']} → {d['open_files']['end']}",
        f"- {e['frames']} frames at {e['fps']} fps, {e['events']} events sent, "
        f"{d['events_unique']} received once each, {d['events_lost']} lost, {e['errors']} errors",
    ]


def finetune_section(d: dict) -> list[str]:
    lines = head("TrashNet: head vs fine-tuning, in-source and cross-source", d)
    lines += [
        f"{d.get('dataset', '')}; cross-source: {d.get('cross_source', '')}",
        "",
        "Rows with more seeds first, then best first; 1-seed rows are seed 0 only. An "
        "ensemble run that reused members of a smaller one (resumed from their checkpoints) "
        "has a short run wall: the epochs column is the training time of every member.",
        "",
        *columns(
            "| method | seeds | test accuracy (per seed) | test bin accuracy | cross-source bin "
            "accuracy | cross-source bin recall | training images | training epochs, all members "
            "(s) | run wall (s) |"
        ),
    ]
    rows = sorted(
        d["summary"].items(),
        key=lambda kv: (-len(kv[1]["seeds"]), -kv[1]["test.accuracy"]["mean"]),
    )
    for method, m in rows:
        acc, bacc = m["test.accuracy"], m["test.bin_accuracy"]
        xs = m.get("cross_source.bin_accuracy", {"mean": float("nan")})
        rec = ", ".join(f"{b} {pct(v)}" for b, v in m.get("cross_source.bin_recall", {}).items())
        seeds = acc.get("per_seed", [])
        per = f" ({' / '.join(f'{100 * v:.1f}' for v in seeds)})" if len(seeds) > 1 else ""
        lines.append(
            f"| {method} | {len(m['seeds'])} | {pct(acc['mean'])} ± {100 * acc['std']:.1f}{per} "
            f"| {pct(bacc['mean'])} | {pct(xs['mean'])} | {rec} | "
            f"{m.get('train_images', '')} | {m.get('epoch_seconds_mean') or 0:.0f} | "
            f"{m.get('seconds_mean', 0):.0f} |"
        )
    return lines


def finetune_all_section(d: dict) -> list[str]:
    t = d["test"]
    recall = ", ".join(f"{b} {pct(v)}" for b, v in sorted(t["bin_recall"].items()))
    sec = d["finetune_seconds"]
    p = d["params"]  # training config keys since the fine-tuning split; older results: short
    epochs, views = (
        p.get("finetune_epochs", p.get("epochs")),
        p.get("augment_views", p.get("views")),
    )
    return head("Partial fine-tuning on all of ../shared/data", d) + [
        f"- {d['images']['train']} training images, {epochs} epochs, "
        f"{views} augmented views: {d['finetune_wall_seconds']:.0f} s wall "
        f"(activation cache {sec['cache']:.0f} s, training {sec['train']:.0f} s)",
        f"- test ({t['n']} images): accuracy {pct(t['accuracy'])}, macro-F1 "
        f"{pct(t['macro_f1'])}, bin accuracy {pct(t['bin_accuracy'])}; per-bin recall: {recall}",
    ]


def bundle_latency_section(d: dict) -> list[str]:
    ref = d["reference"]
    lines = head("What each TrashNet recipe costs per frame (seed-0 bundles)", d)
    lines += [
        f"ONNX Runtime, batch 1; reference: PyTorch eager on the plain Lite0 backbone at 224 px, "
        f"{ref['torch_eager_1t']['p50_ms']:.1f} ms at 1 thread and "
        f"{ref['torch_eager_2t']['p50_ms']:.1f} ms at 2 threads in the same run.",
        "",
        *columns(
            "| method | accuracy (3 seeds) | members | flip TTA | input | p50 1 thread | "
            "p50 2 threads | × eager (1 thread) | size |"
        ),
    ]
    rows = sorted(d["methods"].items(), key=lambda kv: kv[1]["ort_1t"]["p50_ms"])
    for method, r in rows:
        acc = r.get("accuracy_mean")
        lines.append(
            f"| {method} | {pct(acc) if acc is not None else ''} | {r['members']} | "
            f"{'yes' if r['tta_flip'] else 'no'} | {r['input_size']} | "
            f"{r['ort_1t']['p50_ms']:.1f} ms | {r['ort_2t']['p50_ms']:.1f} ms | "
            f"{r['ort_1t']['x_torch_eager']:.2f} | {r['bytes'] / 1e6:.1f} MB |"
        )
    skipped = d.get("skipped", {})
    lines += [""] if skipped else []
    lines += [f"- {method}: not measured ({why})" for method, why in skipped.items()]
    return lines


def backbones_section(d: dict) -> list[str]:
    lines = head(f"Backbones as frozen feature extractors, {d['dataset']}", d)
    lines += [
        *columns(
            "| backbone | input | numpy head accuracy | logistic-regression reference | "
            "latency p50 (1 thread) | ONNX size |"
        ),
    ]
    for name, r in d["results"].items():
        lines.append(
            f"| {name} | {r['input_size']} | {pct(r['head_accuracy_mean'])} ± "
            f"{100 * r['head_accuracy_std']:.1f} | {pct(r['logreg_accuracy_mean'])} ± "
            f"{100 * r['logreg_accuracy_std']:.1f} | {r['latency_1thread']['p50_ms']:.1f} ms | "
            f"{r['backbone_onnx_bytes'] / 1e6:.1f} MB |"
        )
    return lines


def real_world_section(d: dict) -> list[str]:
    ins = d["in_source_test"]
    lines = [
        *head("Real-world accuracy: a source held out of training", d),
        f"- in-source (all-data test split, {ins['runs'][0]['n']} images): bin accuracy "
        f"{pm(ins['bin_accuracy'])}, decided {pm(ins.get('coverage'))} of items, of which "
        f"{pm(ins.get('decided_accuracy'))} correct",
        "",
        *columns(
            "| held out (trained on everything else) | images | bin accuracy | recall compost / "
            "landfill / recycling | decided | decided correct | logistic regression |"
        ),
    ]
    for h in d["held_out"]:
        z, ref = h["zero_shot"], h["zero_shot_reference_logreg"]
        lines.append(
            f"| {h['held_out']} (zero-shot) | {h['images']} | {pm(z['bin_accuracy'])} | "
            f"{recalls(z['bin_recall'])} | {pm(z.get('coverage'))} | "
            f"{pm(z.get('decided_accuracy'))} | {pct(ref['bin_accuracy'])} |"
        )
    lines += [
        "",
        "A site's own photos (K per bin, filed as joystick corrections: a bin, no label; "
        "3 random draws), head-only update without torch, bin accuracy on the rest of that "
        "source:",
        "",
        *columns(
            "| held out | K per bin | bin accuracy | recall compost / landfill / recycling | "
            "update time | other sources' test bin accuracy after it | logistic regression |"
        ),
    ]
    for h in d["held_out"]:
        for f in h["few_shot"]:
            secs = f.get("seconds", {}).get("mean")
            lines.append(
                f"| {h['held_out']} | {f['k_per_bin']} | {pm(f['bin_accuracy'])} | "
                f"{recalls(f['bin_recall'])} | {secs:.1f} s | "
                f"{pm(f.get('other_sources_test_bin_accuracy'))} | "
                f"{pm(f['reference_logreg'].get('bin_accuracy'))} |"
            )
    return lines


def zero_shot_limits_section(d: dict) -> list[str]:
    v, o, p = d["vocabulary_ceiling"], d["open_set"], d["imagenet_prior"]
    w = p["chosen_weight_leave_one_source_out"]
    lines = [
        *head("What bounds zero-shot accuracy on real/takeaway", d),
        f"- the training vocabulary's ceiling (each takeaway item named, perfectly, by the "
        f"training label of its material): bin accuracy {pct(v['bin_accuracy'])}, recall "
        f"{recalls(v['bin_recall'])}",
        f"- ImageNet's classes as a prior (a hand map of the backbone's own classifier, written "
        f"after seeing which classes takeaway fires, so an optimistic bound): "
        f"{pct(p['takeaway_prior_alone'])} alone; mixed with the head at w = {w} (chosen "
        f"leave-one-source-out on extra, household and trashnet) "
        f"{pct(p['takeaway_at_chosen'])}, against {pct(p['takeaway_head_alone'])} for the head",
        "",
        *columns(
            "| open-set score (threshold: 2 % of in-source validation) | takeaway flagged | "
            "decided correct | best decided correct at any threshold (coverage ≥ 10 %) |"
        ),
    ]
    for name in ("familiarity", "mahalanobis", "bin_confidence"):
        s = o[name]
        lines.append(
            f"| {name} | {pct(s['flagged'])} | {pct(s['decided_accuracy'])} | "
            f"{pct(s['best_decided_accuracy_at_10pct_coverage'])} |"
        )
    return lines


def edge_drops_section(d: dict) -> list[str]:
    lines = [
        *head("The edge on drop scenes built from real/ photos", d),
        f"- model: {d['model']['version']} (never trained on real/); {d['photos']['items']} "
        f"photos composited at {d['scene']['area'][0]:.0%}–{d['scene']['area'][1]:.0%} of the "
        f"frame on {', '.join(d['scene']['backgrounds'])} backgrounds",
        "",
        *columns(
            "| mode | exactly one event per item | event bin accuracy | photo-level bin accuracy "
            "| gap (points) |"
        ),
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
        *head("The bundled default model against the previous one (batch 1)", d),
        f"- {b['current']['version']}: {b['current']['bytes'] / 1e6:.1f} MB, "
        f"{b['current']['labels']} labels; {b['baseline']['version']}: "
        f"{b['baseline']['bytes'] / 1e6:.1f} MB, {b['baseline']['labels']} labels",
        "",
        *columns(
            "| threads | current p50 | previous p50 | current / previous | PyTorch eager p50 |"
        ),
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


def tables_block(load: Loader) -> list[str]:
    """Every benchmark's table, in reading order."""
    lines: list[str] = []
    d = load("pipeline_full")
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
        d = load(name)
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
        "zero_shot_limits": zero_shot_limits_section,
        "edge_drops": edge_drops_section,
        "default_latency": default_latency_section,
    }
    names = ("real_world", "zero_shot_limits", "edge_drops", "default_latency", "int8_latency")
    names = (*names, "fewshot")
    names = (*names, "backbones", "finetune_compare", "finetune_all_data")
    names = (*names, "bundle_latency", "edge_fps")
    for name in (*names, "edge_soak", "edge_soak_30min"):
        d = load(name)
        if d:
            section = special.get(name)
            lines += (section(d) if section else generic_section(name, d)) + [""]
    return lines[:-1] if lines and lines[-1] == "" else lines
