"""A skipped test says why, and the dev extra holds what CI needs to run the tests."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_importorskip_gives_a_reason() -> None:
    silent = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "importorskip"
                and not any(k.arg == "reason" for k in node.keywords)
                and len(node.args) < 3
            ):
                silent.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not silent, silent


def test_the_dev_extra_runs_the_home_assistant_template_test() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(d.split(">")[0].split("=")[0].strip() == "jinja2" for d in extras["dev"])
