"""SqliteRegistry on a real SQLite file with real copied ONNX bundles."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.registry.fixtures import BAD_REASONS, GOOD_METRICS, LINEAGE, register
from whichbin.errors import ConfigError, RegistryError
from whichbin.inference import read_meta
from whichbin.registry import ApprovalStatus, TransitionRefused, VersionNotFound, open_registry
from whichbin.registry.local import SqliteRegistry


def test_register_list_show(registry: SqliteRegistry, color_bundle: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("<h1>eval</h1>")
    v1 = register(registry, color_bundle, report=report)
    v2 = register(registry, color_bundle, passed=False)

    assert [v.id for v in registry.list()] == ["trash-classifier/1", "trash-classifier/2"]
    assert registry.list("other") == []
    shown = registry.get("trash-classifier/1")
    assert shown == v1 and registry.get("2") == v2
    assert shown.status == ApprovalStatus.PENDING and shown.gate == "passed"
    assert shown.metrics == GOOD_METRICS and v2.reasons == BAD_REASONS
    assert shown.lineage["manifest_hash"] == LINEAGE["manifest_hash"]
    assert shown.lineage["source_sha256"] == hashlib.sha256(color_bundle.read_bytes()).hexdigest()

    # The registry holds its own copy, stamped with the registered id; sha256 is of that copy.
    artifact = registry.artifact_path(v1.id)
    assert artifact == registry.root / "artifacts" / "trash-classifier" / "1" / "model.onnx"
    assert hashlib.sha256(artifact.read_bytes()).hexdigest() == v1.sha256
    assert v1.size_bytes == artifact.stat().st_size
    assert read_meta(artifact).version == "trash-classifier/1"
    assert read_meta(color_bundle).version == "test/1"  # the source is untouched
    assert Path(v1.report or "").joinpath("index.html").read_text() == "<h1>eval</h1>"
    assert [e.action for e in registry.history(v1.id)] == ["register"]


def test_report_file_is_copied(
    registry: SqliteRegistry, color_bundle: Path, tmp_path: Path
) -> None:
    (tmp_path / "report.md").write_text("# eval")
    v = register(registry, color_bundle, report=tmp_path / "report.md")
    assert Path(v.report or "").read_text() == "# eval"
    assert Path(v.report or "").is_relative_to(registry.root)


def test_version_numbers_are_allocated_atomically(tmp_path: Path, color_bundle: Path) -> None:
    root = tmp_path / "registry"
    SqliteRegistry(root)
    ids: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:  # one registry object per thread, like separate pipeline processes
            ids.append(register(SqliteRegistry(root), color_bundle).id)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(ids, key=lambda i: int(i.split("/")[1])) == [
        f"trash-classifier/{n}" for n in range(1, 7)
    ]
    assert not list((root / "artifacts" / ".staging").iterdir())


def test_unknown_and_invalid_versions(registry: SqliteRegistry) -> None:
    with pytest.raises(VersionNotFound, match="trash-classifier/9"):
        registry.get("9")
    with pytest.raises(RegistryError, match="not a version id"):
        registry.approve("latest", by="ana")


def test_register_refuses_missing_or_foreign_files(
    registry: SqliteRegistry, tmp_path: Path
) -> None:
    with pytest.raises(RegistryError, match="nothere.onnx"):
        registry.register("trash-classifier", tmp_path / "nothere.onnx", {}, True, [], {})
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(RegistryError, match="junk.onnx"):
        registry.register("trash-classifier", junk, {}, True, [], {})
    with pytest.raises(RegistryError, match="model name"):
        registry.register("bad name", junk, {}, True, [], {})
    assert registry.list() == []


def test_failed_gate_is_refused_and_nothing_is_recorded(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    v = register(registry, color_bundle, passed=False)
    with pytest.raises(TransitionRefused) as e:
        registry.approve(v.id, by="ana")
    assert v.id in str(e.value) and BAD_REASONS[0] in str(e.value)
    assert registry.get(v.id).status == ApprovalStatus.PENDING
    assert [e.action for e in registry.history(v.id)] == ["register"]
    assert registry.latest_approved("trash-classifier") is None


def test_latest_approval_wins_and_history_persists(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    registry.approve(v1.id, by="ana", note="first")
    registry.approve(v2.id, by="bo")
    assert registry.latest_approved("trash-classifier").id == v2.id  # type: ignore[union-attr]
    assert registry.get(v1.id).status == ApprovalStatus.APPROVED  # stays Approved in history

    registry.approve(v1.id, by="cy", note="roll back")  # re-approval makes it current again
    assert registry.latest_approved("trash-classifier").id == v1.id  # type: ignore[union-attr]

    registry.reject(v1.id, reason="mislabels cups", by="cy")
    assert registry.latest_approved("trash-classifier").id == v2.id  # type: ignore[union-attr]
    with pytest.raises(TransitionRefused, match="already rejected"):
        registry.reject(v1.id, reason="again")

    reopened = SqliteRegistry(registry.root)
    history = [(e.action, e.by, e.note) for e in reopened.history(v1.id)]
    assert history == [
        ("register", "", "passed"),
        ("approve", "ana", "first"),
        ("approve", "cy", "roll back"),
        ("reject", "cy", "mislabels cups"),
    ]
    assert all(e.at.endswith("Z") for e in reopened.history(v1.id))
    with sqlite3.connect(registry.db_path) as conn:  # a real SQLite file others can query
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 6


def test_open_registry_uris(tmp_path: Path) -> None:
    assert isinstance(open_registry(str(tmp_path / "a")), SqliteRegistry)
    reg = open_registry((tmp_path / "b").as_uri())
    assert reg.uri == str(tmp_path / "b")
    with pytest.raises(RegistryError, match="unknown scheme"):
        open_registry("s3://bucket/x")


def test_numpy_metrics_are_stored_as_plain_json(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    import numpy as np

    metrics = {"accuracy": np.float32(0.5), "n": np.int64(12), "recall": np.array([0.5, 1.0])}
    v = registry.register("trash-classifier", color_bundle, metrics, True, [], {"p": Path("/x")})
    assert registry.get(v.id).metrics == {"accuracy": 0.5, "n": 12, "recall": [0.5, 1.0]}
    assert v.lineage["p"] == "/x"
    with pytest.raises(RegistryError, match="metrics must be plain JSON"):
        registry.register("trash-classifier", color_bundle, {"x": object()}, True, [], {})


def test_paths_are_stored_relative_so_a_copied_registry_serves_its_own(
    registry: SqliteRegistry, color_bundle: Path, tmp_path: Path
) -> None:
    (tmp_path / "report.md").write_text("# eval")
    register(registry, color_bundle, report=tmp_path / "report.md")
    with sqlite3.connect(registry.db_path) as conn:
        stored = json.loads(conn.execute("SELECT record FROM versions").fetchone()[0])
    assert stored["artifact"] == "artifacts/trash-classifier/1/model.onnx"
    assert stored["report"] == "artifacts/trash-classifier/1/report/report.md"

    copy = SqliteRegistry(shutil.copytree(registry.root, tmp_path / "copy"))
    shutil.rmtree(registry.root)  # the original is gone: the copy must not need it
    assert copy.artifact_path("1") == copy.root / "artifacts/trash-classifier/1/model.onnx"
    assert Path(copy.get("1").report or "").read_text() == "# eval"


def test_absolute_paths_of_older_registries_are_migrated_on_open(
    registry: SqliteRegistry, color_bundle: Path, tmp_path: Path
) -> None:
    register(registry, color_bundle)
    old_root = "/srv/elsewhere/whichbin-registry"  # where the registry was written
    with sqlite3.connect(registry.db_path) as conn:  # as registries before relative paths
        record = json.loads(conn.execute("SELECT record FROM versions").fetchone()[0])
        record["artifact"] = f"{old_root}/artifacts/trash-classifier/1/model.onnx"
        conn.execute("UPDATE versions SET record = ?", (json.dumps(record),))
        conn.execute("PRAGMA user_version = 0")

    reopened = SqliteRegistry(registry.root)
    assert reopened.artifact_path("1") == registry.root / "artifacts/trash-classifier/1/model.onnx"
    with sqlite3.connect(registry.db_path) as conn:
        stored = json.loads(conn.execute("SELECT record FROM versions").fetchone()[0])
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert stored["artifact"] == "artifacts/trash-classifier/1/model.onnx"


def test_a_huge_note_is_refused_and_stores_nothing(
    registry: SqliteRegistry, color_bundle: Path
) -> None:
    v = register(registry, color_bundle)
    size = registry.db_path.stat().st_size
    with pytest.raises(RegistryError, match=r"^note: 20000000 characters"):
        registry.approve(v.id, by="mallory", note="x" * 20_000_000)
    with pytest.raises(RegistryError, match=r"^reason: "):
        registry.reject(v.id, reason="x" * 20_000_000)
    assert registry.get(v.id).status == ApprovalStatus.PENDING
    assert [e.action for e in registry.history(v.id)] == ["register"]
    assert registry.db_path.stat().st_size == size


def test_rollback_and_pins_are_audited(registry: SqliteRegistry, color_bundle: Path) -> None:
    v1, v2 = register(registry, color_bundle), register(registry, color_bundle)
    registry.approve(v1.id, by="ana")
    registry.approve(v2.id, by="ana")
    with pytest.raises(TransitionRefused, match="needs a reason"):
        registry.rollback(v1.id, by="bo", reason="")
    registry.rollback(v1.id, by="bo", reason="v2 confuses lids")
    assert registry.latest_approved("trash-classifier").id == v1.id  # type: ignore[union-attr]

    with pytest.raises(TransitionRefused, match="not Approved"):
        registry.pin("cam1", register(registry, color_bundle).id, by="cy")
    with pytest.raises(ConfigError, match="reserved"):
        registry.pin("fleet", v2.id, by="cy")
    registry.pin("cam1", v2.id, by="cy", reason="field trial")
    registry.pin("cam1", v1.id, by="cy")  # re-pinning replaces the pin
    registry.pin("cam2", v2.id, by="cy")
    assert [(p.device, p.version) for p in registry.pins()] == [("cam1", v1.id), ("cam2", v2.id)]
    unpinned = registry.unpin("cam1", by="dee")
    assert unpinned is not None and unpinned.version == v1.id
    assert registry.unpin("cam1", by="dee") is None
    assert [p.device for p in SqliteRegistry(registry.root).pins()] == ["cam2"]

    assert [(e.action, e.by, e.note) for e in registry.history(v1.id)][2:] == [
        ("rollback", "bo", "v2 confuses lids"),
        ("pin", "cy", "cam1"),
        ("unpin", "dee", "cam1"),
    ]
    assert ("pin", "cy", "cam1: field trial") in [
        (e.action, e.by, e.note) for e in registry.history(v2.id)
    ]
