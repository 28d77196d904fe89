"""A device installs only deployments signed by a key it trusts; everything else is
``failed`` with the reason and the old model keeps running."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.edge.fakes import InMemoryPublisher
from tests.helpers import SigningKey, make_color_bundle
from whichbin.config import EdgeSecurityConfig, FetchPolicy
from whichbin.contract import Deployment, Topics, iso, utc_now
from whichbin.edge.follower import DeploymentFollower
from whichbin.inference import sha256_file
from whichbin.security.guard import DeploymentGuard, Retries
from whichbin.security.signing import TrustedKeys

KEY = SigningKey.session()
STATUS = Topics("cam1").deployment_status


def unsigned(path: Path, version: str, sha: str | None = None) -> Deployment:
    """What an attacker on the broker publishes: a valid model and its own sha256."""
    return Deployment(
        version=version,
        sha256=sha or sha256_file(path),
        url=path.resolve().as_uri(),
        ts=iso(utc_now()),
        approved_by="mallory",
        size=path.stat().st_size,
    )


@pytest.fixture()
def running(tmp_path: Path) -> tuple[DeploymentFollower, InMemoryPublisher, Path]:
    """A follower trusting the session key, running the signed test/1."""
    pub = InMemoryPublisher()
    follower = DeploymentFollower("cam1", tmp_path / "models", pub, guard=KEY.guard(tmp_path))
    good = make_color_bundle(tmp_path / "good.onnx", version="test/1")
    assert follower.apply(KEY.sign(unsigned(good, "test/1")))
    return follower, pub, tmp_path


def last_status(pub: InMemoryPublisher) -> dict:
    return pub.on(STATUS)[-1]


def assert_kept(follower: DeploymentFollower, models: Path, forged: Path) -> None:
    current = follower.current()
    assert current is not None and current.version == "test/1"
    assert not list(models.glob(f"{sha256_file(forged)}*"))  # never downloaded


def test_a_forged_deployment_is_refused_and_the_old_model_kept(running) -> None:  # noqa: ANN001
    follower, pub, tmp = running
    evil = make_color_bundle(tmp / "evil.onnx", version="test/666")
    other = SigningKey.create(tmp / "other")  # a key the device does not trust
    forged_by_other = other.sign(unsigned(evil, "test/666"))
    # A valid signature by the trusted key, but over another artifact's sha256.
    good_sig = KEY.sign(unsigned(tmp / "good.onnx", "test/666"))
    swapped = good_sig.model_copy(update={"sha256": sha256_file(evil), "url": evil.as_uri()})
    cases = [
        (unsigned(evil, "test/666"), "unsigned deployment"),
        (forged_by_other, f"unknown key {forged_by_other.key_id}"),
        (swapped, "bad signature"),
        (KEY.sign(unsigned(evil, "test/666")).model_copy(update={"size": 1}), "bad signature"),
    ]
    for dep, reason in cases:
        assert not follower.apply(dep)
        status = last_status(pub)
        assert status["state"] == "failed" and status["version"] == "test/666"
        assert f"deployment test/666 refused: {reason}" in status["error"]
        assert "\n" not in status["error"]
        assert_kept(follower, tmp / "models", evil)
    states = [s["state"] for s in pub.on(STATUS)]
    assert "downloading" not in states[2:]  # refused before anything was fetched


def test_a_device_with_no_trusted_key_refuses_every_deployment_and_says_why(
    tmp_path: Path,
) -> None:
    pub = InMemoryPublisher()
    follower = DeploymentFollower("cam1", tmp_path / "models", pub)  # default: no key
    good = make_color_bundle(tmp_path / "good.onnx", version="test/1")
    assert not follower.apply(KEY.sign(unsigned(good, "test/1")))
    error = last_status(pub)["error"]
    assert "refused: no trusted key" in error and "edge.security.trusted_keys" in error
    assert follower.current() is None


def test_the_insecure_flag_accepts_unsigned_but_never_a_wrong_signature(tmp_path: Path) -> None:
    root = tmp_path
    good = make_color_bundle(tmp_path / "good.onnx", version="test/1")
    bench = DeploymentGuard(
        TrustedKeys([KEY.signer.public_key]),
        FetchPolicy(file_root=root),
        insecure_accept_unsigned=True,
    )
    follower = DeploymentFollower("cam1", tmp_path / "models", InMemoryPublisher(), guard=bench)
    assert follower.apply(unsigned(good, "test/1"))
    other = SigningKey.create(tmp_path / "other")
    two = make_color_bundle(tmp_path / "two.onnx", version="test/2")
    bad = KEY.sign(unsigned(two, "test/2")).model_copy(
        update={"signature": other.sign(unsigned(two, "test/2")).signature}
    )
    assert not follower.apply(bad)
    assert EdgeSecurityConfig().insecure_accept_unsigned is False  # off by default


def test_rotation_a_device_trusting_two_keys_accepts_both(tmp_path: Path) -> None:
    new = SigningKey.create(tmp_path / "new")
    settings = EdgeSecurityConfig(
        trusted_keys=[KEY.public, new.public], fetch=FetchPolicy(file_root=tmp_path)
    )
    follower = DeploymentFollower(
        "cam1",
        tmp_path / "models",
        InMemoryPublisher(),
        guard=DeploymentGuard.from_settings(settings),
    )
    one = make_color_bundle(tmp_path / "one.onnx", version="test/1")
    two = make_color_bundle(tmp_path / "two.onnx", version="test/2")
    assert follower.apply(KEY.sign(unsigned(one, "test/1")))  # signed with the old key
    assert follower.apply(new.sign(unsigned(two, "test/2")))  # signed with the new key
    # Rotation done: the old key is removed from the device, and its signatures fail.
    after = DeploymentGuard.from_settings(
        settings.model_copy(update={"trusted_keys": [new.public]})
    )
    follower2 = DeploymentFollower("cam1", tmp_path / "m2", InMemoryPublisher(), guard=after)
    assert not follower2.apply(KEY.sign(unsigned(one, "test/1")))


def test_a_fixed_artifact_arrives_without_a_manual_reload(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    root.mkdir()
    good = make_color_bundle(tmp_path / "good.onnx", version="test/1")
    served = root / "model.onnx"
    served.write_bytes(b"corrupted")  # the registry's copy is broken at first
    dep = KEY.sign(unsigned(good, "test/1")).model_copy(update={"url": served.as_uri()})
    pub = InMemoryPublisher()
    guard = KEY.guard(root, retry_initial=0.2, retry_max=0.4)
    follower = DeploymentFollower("cam1", tmp_path / "models", pub, guard=guard, settle=0.01)
    follower.start()
    try:
        follower.on_message(Topics("cam1").fleet_deployment, dep.to_json().encode())
        assert wait_for(lambda: any(s["state"] == "failed" for s in pub.on(STATUS)), 10)
        shutil.copy(good, served)  # an operator fixes the artifact; nobody touches the device
        assert wait_for(lambda: last_status(pub)["state"] == "active", 10), pub.on(STATUS)
        current = follower.current()
        assert current is not None and current.sha256 == sha256_file(good)
    finally:
        follower.stop()


def test_retries_back_off_and_refusals_wait_for_a_new_message() -> None:
    r = Retries(initial=5, maximum=20)
    assert [r.failed("a", 0) for _ in range(4)] == [5, 10, 20, 20]
    assert r.blocked("a", 10) and not r.blocked("a", 21)
    assert r.wait(10) == 10
    assert r.failed("sig", 0, permanent=True) is None
    assert r.blocked("sig", 10**9)
    r.succeeded("a")
    assert not r.blocked("a", 0) and r.wait(0) is None
    r.clear()
    assert not r.blocked("sig", 0)
