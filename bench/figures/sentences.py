"""The sentences that quote figures: README's "What to expect" and docs/figures.md's
"What the figures say"."""

from __future__ import annotations

from figures.text import Loader, pct, pm

ACCURATE = "partial:b4:e12:tta:lite2:last:val0.05"  # configs/accurate.yaml's recipe
LITE0_TUNED = "partial:b4:e12:tta"  # the same recipe on Lite0 at 224 px
ENSEMBLE4 = "partial:b4:e12:tta:n4:last:val0.05"


def expect_block(load: Loader) -> list[str]:
    """README, "Teach it your bins": what a site's own photos buy (real_world.json)."""
    d = load("real_world")
    if not d:
        return []
    h = next(h for h in d["held_out"] if h["held_out"] == "takeaway")
    few = {f["k_per_bin"]: f for f in h["few_shot"]}
    secs = [f["seconds"]["mean"] for f in h["few_shot"]]
    other = min(f["other_sources_test_bin_accuracy"]["mean"] for f in h["few_shot"])
    ins = d["in_source_test"]["bin_accuracy"]["mean"]
    ks = sorted(few)
    steps = ", ".join(f"{pct(few[k]['bin_accuracy']['mean'])} with {k}" for k in ks[:-1])
    return [
        f"**What to expect** (`{d['command']}`, {d['when'][:10]}; tables in "
        "[docs/figures.md](docs/figures.md)): on real/takeaway, a place the model never saw, "
        f"bin accuracy is {pct(h['zero_shot']['bin_accuracy']['mean'])} zero-shot, "
        f"{steps.replace(' with ' + str(ks[0]), ' with ' + str(ks[0]) + ' photos per bin', 1)} "
        f"and {pct(few[ks[-1]]['bin_accuracy']['mean'])} with {ks[-1]}; each update takes "
        f"{min(secs):.1f}–{max(secs):.1f} s on a {d['machine']['cores']}-core machine, and the "
        f"other sources' test bin accuracy stays within {100 * (ins - other):.1f} points "
        f"({pct(other)} against {pct(ins)}).",
        *_zero_shot_limit(load),
    ]


def _zero_shot_limit(load: Loader) -> list[str]:
    """Why a new place should plan to teach its bins (zero_shot_limits.json)."""
    z = load("zero_shot_limits")
    if not z:
        return []
    scores = [v for v in z["open_set"].values() if isinstance(v, dict)]
    best = max(v["best_decided_accuracy_at_10pct_coverage"] for v in scores)
    return [
        "",
        "Plan on teaching a new place: zero-shot accuracy there is bounded by what the training "
        "photos show. None of them shows food-soiled paper going to compost or cutlery to "
        "landfill, so a model naming every takeaway item's material perfectly would only "
        f"score {pct(z['vocabulary_ceiling']['bin_accuracy'])} there, and no open-set threshold "
        f"that decides at least 10 % of its photos gets more than {pct(best)} of them right "
        f"(`{z['command']}`).",
    ]


def findings_block(load: Loader) -> list[str]:
    """docs/figures.md, "What the figures say": the choices the figures justify."""
    bb, fc, bl = load("backbones"), load("finetune_compare"), load("bundle_latency")
    pf, pa, ph = load("pipeline_full"), load("pipeline_accurate"), load("pipeline_accurate_head")
    ftall, rw, rc, i8 = (
        load("finetune_all_data"),
        load("real_world"),
        load("real_world_composites"),
        load("int8_latency"),
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
            f"model ({pm(s[ACCURATE]['test.accuracy'])} against "
            f"{pm(s[LITE0_TUNED]['test.accuracy'])} for Lite0 fine-tuned the same way at "
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
            f"is `configs/accurate.yaml` (`{ACCURATE}`): **{pm(acc['test.accuracy'])}** "
            f"({per}), bin accuracy {pct(acc['test.bin_accuracy']['mean'])}, "
            f"{pct(acc['cross_source.bin_accuracy']['mean'])} bin accuracy on the "
            f"cross-source composites; {ms(ACCURATE)} per frame on one thread. A four-member "
            f"Lite0 ensemble reaches {pm(s[ENSEMBLE4]['test.accuracy'])} at {ms(ENSEMBLE4)}; "
            f"one Lite0 model {pm(s[LITE0_TUNED]['test.accuracy'])} at {ms(LITE0_TUNED)}; the "
            f"numpy head on frozen Lite0 features {pm(s['head']['test.accuracy'])} at "
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
            f"../shared/data it reaches {pct(c['metrics']['bin_accuracy'])} bin accuracy "
            f"({pct(c['metrics']['accuracy'])} label) in {c['wall_seconds']:.0f} s "
            f"(`{pf['command']}`, its `--base-model default` line), against "
            f"{pct(ftall['test']['bin_accuracy'])} for partial fine-tuning in "
            f"{ftall['finetune_wall_seconds'] / 60:.0f} minutes and "
            f"{pct(a['metrics']['bin_accuracy'])} ({pct(a['metrics']['accuracy'])} label, "
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
            f"{pct(h['metrics']['accuracy'])} label and {pct(h['metrics']['bin_accuracy'])} "
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
            f"({pct(zero(rc, 'takeaway'))}), real/household "
            f"{100 * (zero(rc, 'household') - zero(rw, 'household')):+.1f}, the all-data test "
            f"split {pct(rc['in_source_test']['bin_accuracy']['mean'])} bin accuracy against "
            f"{pct(rw['in_source_test']['bin_accuracy']['mean'])}, and every few-shot figure "
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
