"""data check: real decoding, quarantine with reasons, normalisation, near-duplicates, cache."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from tests.processing.images import image_tree, noisy_jpeg_bytes, photo, photo_array, two_tone
from whichbin.errors import DataError
from whichbin.inference import sha256_file
from whichbin.processing.check import check_dataset
from whichbin.processing.ingest import import_source
from whichbin.processing.layout import DatasetDir
from whichbin.processing.manifest import split_dataset
from whichbin.processing.validate import inspect_image
from whichbin.progress import silent_reporter


def _import(src: Path, ds: Path) -> Path:
    import_source(src, ds, reporter=silent_reporter)
    return ds


def _check(ds: Path, **kw: object):  # noqa: ANN202
    return check_dataset(ds, reporter=silent_reporter, **kw)  # type: ignore[arg-type]


def _cut(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def test_pil_raises_on_a_truncated_jpeg() -> None:
    data = _cut(noisy_jpeg_bytes(), 0.6)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with Image.open(io.BytesIO(data)) as im, pytest.raises(OSError, match="truncated"):
        im.load()


def test_inspection_not_fooled_by_load_truncated_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # someone turned it on
    f = tmp_path / "cut.jpg"
    f.write_bytes(_cut(noisy_jpeg_bytes(), 0.6))
    assert inspect_image(f, "x").error.startswith("truncated:")


def test_quarantine_keeps_files_with_reasons(tmp_path: Path) -> None:
    src = image_tree(tmp_path / "src", {"glass": 3, "paper": 2})
    (src / "glass" / "cut.jpg").write_bytes(_cut(noisy_jpeg_bytes(), 0.6))
    (src / "paper" / "notes.jpg").write_text("this is a text file named .jpg\n")
    photo(src / "paper" / "tiny.jpg", seed=5, size=(40, 20))
    (src / "paper" / "empty.png").write_bytes(b"")
    originals = {p.name: p.read_bytes() for p in src.rglob("*.*")}
    ds = _import(src, tmp_path / "ds")

    report = _check(ds)

    assert report.ok == 5
    reasons = {Path(q["path"]).name: q["reason"] for q in report.quarantined}
    assert reasons["cut.jpg"].startswith("truncated:")
    assert reasons["notes.jpg"].startswith("not-an-image:")
    assert reasons["tiny.jpg"].startswith("too-small: 40x20 px")
    assert reasons["empty.png"].startswith("empty:")
    for q in report.quarantined:
        kept = ds / q["path"]
        assert q["path"].startswith(f"quarantine/{q['label']}/")
        assert kept.read_bytes() == originals[kept.name]  # kept, unchanged
        assert q["sha256"] == sha256_file(kept)
        assert not (ds / q["from"]).exists()
    on_disk = [json.loads(line) for line in (ds / "quarantine.jsonl").read_text().splitlines()]
    assert {Path(r["path"]).name for r in on_disk} == set(reasons)
    assert all({"path", "label", "reason", "sha256"} <= set(r) for r in on_disk)
    assert len(DatasetDir(ds).load_samples()) == 5
    # Re-importing the source does not bring the quarantined files back.
    assert import_source(src, ds, reporter=silent_reporter).imported == 0
    assert _check(ds).new_quarantined == []


def test_min_side_is_configurable(tmp_path: Path) -> None:
    src = image_tree(tmp_path / "src", {"a": 2})  # 96x72
    ds = _import(src, tmp_path / "ds")
    assert _check(ds, min_side=80).ok == 0
    assert all(q["reason"].startswith("too-small") for q in _check(ds).quarantined)


def test_truncated_real_jpeg(tmp_path: Path, shared_data: Path) -> None:
    real = next(iter(sorted((shared_data / "trashnet" / "glass").glob("*.jpg"))))
    (tmp_path / "src" / "glass").mkdir(parents=True)
    (tmp_path / "src" / "glass" / "real.jpg").write_bytes(real.read_bytes())
    (tmp_path / "src" / "glass" / "real-cut.jpg").write_bytes(_cut(real.read_bytes(), 0.7))
    report = _check(_import(tmp_path / "src", tmp_path / "ds"))
    assert report.ok == 1
    [q] = report.quarantined
    assert q["path"] == "quarantine/glass/real-cut.jpg"
    assert q["reason"].startswith("truncated:")


def _write_awkward(src: Path) -> None:
    d = src / "odd"
    d.mkdir(parents=True)
    rgb = Image.fromarray(photo_array(1))
    rgb.convert("L").save(d / "grey.jpg")
    Image.new("RGB", (64, 48), (200, 40, 30)).convert("CMYK").save(d / "cmyk.jpg")
    rgba = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    rgba.paste((30, 200, 40, 255), (0, 0, 32, 48))  # left opaque green, right transparent
    rgba.save(d / "alpha.png")
    ramp = (np.tile(np.linspace(0, 65535, 64), (48, 1))).astype(np.uint16)
    Image.fromarray(ramp).save(d / "deep.png")  # 16-bit greyscale
    Image.fromarray(photo_array(2)).convert("P").save(d / "palette.gif")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; viewers turn it 90 degrees clockwise
    two_tone((80, 40)).save(d / "rotated.jpg", exif=exif, quality=95)


def test_awkward_images_are_normalised_not_rejected(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write_awkward(src)
    ds = _import(src, tmp_path / "ds")

    report = _check(ds)

    assert report.quarantined == []
    assert report.ok == 6
    samples = {Path(s.path).name: s for s in DatasetDir(ds).load_samples()}
    assert set(samples) == {
        "grey.jpg",
        "cmyk.jpg",
        "alpha.png",
        "deep.png",
        "palette.png",
        "rotated.jpg",
    }
    for name, s in samples.items():
        with Image.open(ds / s.path) as im:
            assert im.mode == "RGB", name
            assert im.getexif().get(0x0112, 1) == 1, name
            assert im.format == ("JPEG" if name.endswith(".jpg") else "PNG")
        assert s.origin_sha256 and s.origin_sha256 != s.sha256 and s.normalised
        assert sha256_file(ds / s.path) == s.sha256
    with Image.open(ds / "images/odd/rotated.jpg") as im:
        assert im.size == (40, 80)  # upright: turned 90 degrees clockwise
        assert np.argmax(im.getpixel((20, 10))) == 0  # left (red) half is now on top
        assert np.argmax(im.getpixel((20, 70))) == 2
    with Image.open(ds / "images/odd/alpha.png") as im:
        assert im.getpixel((50, 20)) == (255, 255, 255)  # transparent → white
        assert im.getpixel((10, 20)) == (30, 200, 40)
    with Image.open(ds / "images/odd/cmyk.jpg") as im:
        r, g, b = im.getpixel((30, 20))
        assert r > 150 and g < 90 and b < 90
    with Image.open(ds / "images/odd/deep.png") as im:
        assert im.getpixel((0, 0))[0] == 0 and im.getpixel((63, 0))[0] == 255
    # Originals are kept byte for byte.
    for name in ("rotated.jpg", "palette.gif", "deep.png"):
        assert (ds / "originals/odd" / name).read_bytes() == (src / "odd" / name).read_bytes()
    # Idempotent: nothing to do the second time, and the source is still recognised.
    assert _check(ds).normalised == []
    assert import_source(src, ds, reporter=silent_reporter).imported == 0


def _with_copies(tmp_path: Path) -> Path:
    src = image_tree(tmp_path / "src", {"a": 20, "b": 20})
    base = Image.open(src / "a" / "a_0.jpg")
    base.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(src / "a" / "zz_flipped.jpg", quality=85)
    base.rotate(90, expand=True).save(src / "a" / "zz_rotated.jpg", quality=85)
    other = Image.open(src / "b" / "b_3.jpg")
    other.rotate(180).resize((64, 48)).save(src / "b" / "zz_small_turned.jpg", quality=80)
    return _import(src, tmp_path / "ds")


def test_near_duplicates_found_and_kept_in_one_split(tmp_path: Path) -> None:
    ds = _with_copies(tmp_path)
    report = _check(ds)
    assert report.duplicates == [
        ["images/a/a_0.jpg", "images/a/zz_flipped.jpg", "images/a/zz_rotated.jpg"],
        ["images/b/b_3.jpg", "images/b/zz_small_turned.jpg"],
    ]
    assert report.ok == 43  # reported, not removed
    for seed in range(6):
        rows = {
            r.path.name: r.split
            for r in split_dataset(ds, 0.2, 0.2, seed, reporter=silent_reporter).rows
        }
        assert rows["a_0.jpg"] == rows["zz_flipped.jpg"] == rows["zz_rotated.jpg"]
        assert rows["b_3.jpg"] == rows["zz_small_turned.jpg"]


def test_cache_makes_recheck_incremental(tmp_path: Path) -> None:
    ds = _import(image_tree(tmp_path / "src", {"a": 10, "b": 10}), tmp_path / "ds")
    cache = ds / ".cache" / "check.jsonl"
    first = _check(ds)
    assert len(cache.read_text().splitlines()) == 20
    second = _check(ds)
    assert len(cache.read_text().splitlines()) == 20  # nothing decoded again
    assert second.to_json() == first.to_json()
    _import(image_tree(tmp_path / "more", {"a": 3}, seed=50_000), ds)
    assert _check(ds).ok == 23
    assert len(cache.read_text().splitlines()) == 23  # only the 3 new ones


def test_edited_missing_and_hand_copied_files(tmp_path: Path) -> None:
    ds = _import(image_tree(tmp_path / "src", {"a": 3}), tmp_path / "ds")
    _check(ds)
    (ds / "images/a/a_0.jpg").unlink()
    (ds / "images/a/a_1.jpg").write_text("overwritten by accident")
    photo(ds / "images/b/hand.jpg", seed=77)
    report = _check(ds)
    assert sorted(s.path for s in report.samples) == ["images/a/a_2.jpg", "images/b/hand.jpg"]
    assert [q["reason"].split(":")[0] for q in report.new_quarantined] == ["not-an-image"]


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing-here: no such dataset"):
        _check(tmp_path / "nothing-here")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match=r"plain: not a whichbin dataset"):
        _check(tmp_path / "plain")
