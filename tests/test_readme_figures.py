"""`bench/readme_figures.py --check` (CI) fails when a figure in README.md, docs/figures.md or
docs/operations.md differs from bench/results/*.json, and passes on the real tree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "readme_figures.py"


def _figures(root: Path, *flags: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), "--root", str(root), *flags]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    shutil.copy(ROOT / "README.md", root / "README.md")
    for doc in ("figures.md", "operations.md"):
        shutil.copy(ROOT / "docs" / doc, root / "docs" / doc)
    shutil.copytree(ROOT / "bench" / "results", root / "bench" / "results")
    return root


def test_check_passes_on_the_real_tree() -> None:
    out = _figures(ROOT, "--check")
    assert out.returncode == 0, out.stderr


def test_check_fails_on_a_tampered_figure_and_a_rewrite_fixes_it(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    doc = root / "docs" / "figures.md"
    text = doc.read_text()
    assert "| **total wall** | **111.3** |" in text
    doc.write_text(text.replace("| **total wall** | **111.3** |", "| **total wall** | **99.9** |"))
    out = _figures(root, "--check")
    assert out.returncode == 1 and "docs/figures.md" in out.stderr and "tables" in out.stderr
    assert "README.md" not in out.stderr
    assert doc.read_text() != text  # --check writes nothing
    assert _figures(root).returncode == 0 and doc.read_text() == text
    assert _figures(root, "--check").returncode == 0


def test_check_fails_when_a_result_changes_or_readme_prose_drifts(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    res = root / "bench" / "results" / "real_world.json"
    d = json.loads(res.read_text())
    d["held_out"][0]["zero_shot"]["bin_accuracy"]["mean"] = 0.123
    res.write_text(json.dumps(d))
    out = _figures(root, "--check")
    assert out.returncode == 1
    assert "README.md" in out.stderr and "expect" in out.stderr  # the sentence quoting it
    assert "docs/figures.md" in out.stderr  # and the table

    root2 = _copy_tree(tmp_path / "b")
    readme = root2 / "README.md"
    k5 = d["held_out"][0]["few_shot"][0]
    quoted = f"{100 * k5['bin_accuracy']['mean']:.1f} % with 5 photos"
    assert k5["k_per_bin"] == 5 and quoted in readme.read_text()
    readme.write_text(readme.read_text().replace(quoted, "80.0 % with 5 photos"))
    out = _figures(root2, "--check")
    assert out.returncode == 1 and "README.md" in out.stderr


def test_a_missing_block_is_an_error(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("<!-- figures:expect:end -->", ""))
    out = _figures(root, "--check")
    assert out.returncode != 0 and "README.md" in out.stderr


def test_the_edge_figures_in_operations_come_from_edge_fps(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    results = root / "bench" / "results" / "edge_fps.json"
    data = json.loads(results.read_text())
    data["results"]["max_every_frame_threads1"]["fps"] = 12.34
    results.write_text(json.dumps(data))
    out = _figures(root, "--check")
    assert out.returncode == 1
    assert "docs/operations.md" in out.stderr and "edge" in out.stderr
    assert _figures(root).returncode == 0  # rewrite
    assert "**12.3 frames/s**" in (root / "docs" / "operations.md").read_text()
