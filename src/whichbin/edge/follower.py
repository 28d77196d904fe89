"""The deployment follower: retained deployment messages → a verified model, swapped in live.

It listens to ``<prefix>/fleet/deployment`` and ``<prefix>/<device>/deployment`` (both
retained; the device's own one overrides the fleet's, and clearing it falls back to the
fleet's). For a deployment whose sha256 differs from the active model it publishes
``downloading`` → fetches the artifact into ``models_dir`` → ``verifying`` (sha256, load,
one dummy inference) → hands the new model to the frame loop → ``active``. Any failure
publishes ``failed`` with the error and keeps the old model. The work runs on its own
thread so the MQTT network thread is never blocked by a download.

The active model is remembered in ``models_dir/current.json``, so an edge restarted
without a broker still has its model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from whichbin.contract import Deployment, DeploymentStatus, Topics, iso, utc_now
from whichbin.edge.runner import ActiveModel
from whichbin.errors import DeployError, validation_message
from whichbin.inference import sha256_file
from whichbin.messaging.mqtt import Publisher
from whichbin.rules import RulePack

logger = logging.getLogger(__name__)

CURRENT_FILE = "current.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")

FetchFn = Callable[[str, Path, str], Path]
LoadFn = Callable[[Path], Any]


def _default_fetch(url: str, dest: Path, expected_sha256: str) -> Path:
    from whichbin.deploy.fetch import fetch_artifact  # lazy: deploy is optional on a camera

    return fetch_artifact(url, dest, expected_sha256)


class DeploymentFollower:
    """Follows deployments for one device and provides the active model (a ModelProvider).

    Args:
        device_id: this device.
        models_dir: where artifacts and ``current.json`` live (created if missing).
        publisher: where deployment status goes (retained, QoS 1).
        prefix: topic prefix.
        rules: a rule pack overriding the bundles' own.
        fetch: ``(url, dest, sha256) -> Path``; default ``whichbin.deploy.fetch.fetch_artifact``.
        load: ``path -> classifier``; default an OnnxClassifier with ``rules``.
        clock: current UTC datetime (for ``current.json``).
        fallback_default: with no deployment ever received, use the bundled default model.
        settle: seconds to wait after a message for its sibling (fleet and device retained
            messages arrive together on subscribe), so one swap happens instead of two.
    """

    def __init__(
        self,
        device_id: str,
        models_dir: Path,
        publisher: Publisher,
        *,
        prefix: str = "whichbin",
        rules: RulePack | None = None,
        fetch: FetchFn | None = None,
        load: LoadFn | None = None,
        clock: Callable[[], Any] = utc_now,
        fallback_default: bool = False,
        settle: float = 0.2,
    ) -> None:
        self.topics = Topics(device_id, prefix)
        self.models_dir = Path(models_dir)
        self.publisher = publisher
        self.rules = rules
        self._fetch = fetch or _default_fetch
        self._load = load or self._load_onnx
        self.clock = clock
        self.fallback_default = fallback_default
        self.settle = settle
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._active: ActiveModel | None = None
        self._fleet: Deployment | None = None
        self._device: Deployment | None = None
        self._failed: set[tuple[str, str]] = set()  # (sha256, url) that failed: not retried
        self._announced: str | None = None
        self._last_status: DeploymentStatus | None = None
        self._status_unsent = False

    # -- ModelProvider ----------------------------------------------------------------
    def current(self) -> ActiveModel | None:
        with self._lock:
            return self._active

    # -- wiring -----------------------------------------------------------------------
    def attach(self, client: Any) -> None:
        """Subscribe on an MqttClient (re-subscribed by it after every reconnect)."""
        client.subscribe(self.topics.fleet_deployment, self.on_message, qos=1)
        client.subscribe(self.topics.deployment, self.on_message, qos=1)

    def start(self) -> DeploymentFollower:
        """Start the worker thread that applies deployments."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="whichbin-deploy", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def retry(self) -> None:
        """Forget failed deployments and apply the wanted one again (the ``reload`` command)."""
        with self._lock:
            self._failed.clear()
            self._announced = None
        self._wake.set()

    def republish_status(self) -> None:
        """After a reconnect: send the last status if it was not delivered."""
        if self._last_status is not None and self._status_unsent:
            self._publish(self._last_status)

    # -- input ------------------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes) -> None:
        """An MQTT message on a deployment topic (called on the network thread)."""
        deployment: Deployment | None = None
        if payload.strip():
            try:
                deployment = Deployment.model_validate_json(payload)
            except ValidationError as e:
                logger.error(
                    "ignoring deployment on %s", validation_message(e, topic, top="payload")
                )
                return
        with self._lock:
            if topic == self.topics.deployment:
                self._device = deployment
            elif topic == self.topics.fleet_deployment:
                self._fleet = deployment
            else:
                return
        logger.info(
            "deployment on %s: %s", topic, deployment.version if deployment else "(cleared)"
        )
        self._wake.set()

    def wanted(self) -> Deployment | None:
        """The deployment this device should run: its own, else the fleet's."""
        with self._lock:
            return self._device or self._fleet

    # -- startup ----------------------------------------------------------------------
    def restore(self) -> ActiveModel | None:
        """Load the model remembered in current.json (or the default model, if allowed)."""
        model = self._restore_current()
        if model is None and self.fallback_default:
            model = self._restore_default()
        if model is not None:
            with self._lock:
                self._active = model
        return model

    def _restore_current(self) -> ActiveModel | None:
        path = self.models_dir / CURRENT_FILE
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text())
            artifact = self.models_dir / Path(record["file"]).name
            sha = str(record["sha256"])
            if sha256_file(artifact) != sha:
                raise DeployError(f"{artifact}: sha256 does not match {CURRENT_FILE}")
            model = ActiveModel(self._load(artifact), str(record["version"]), sha)
        except Exception as e:
            logger.warning("%s: cannot restore the remembered model (%s)", path, e)
            return None
        logger.info("restored model %s from %s", model.version, path)
        return model

    def _restore_default(self) -> ActiveModel | None:
        from whichbin.inference import default_model_path

        path = default_model_path()
        if not path.is_file():
            logger.warning("no bundled default model at %s", path)
            return None
        try:
            clf = self._load(path)
        except Exception as e:
            logger.warning("cannot load the bundled default model (%s)", e)
            return None
        logger.info("using the bundled default model until a deployment arrives")
        return ActiveModel.from_classifier(clf)

    # -- the worker -------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._stop.wait(self.settle)
            self._wake.clear()
            try:
                self.sync()
            except Exception:
                logger.exception("deployment follower failed; carrying on")

    def sync(self) -> None:
        """Bring the active model in line with the wanted deployment (blocking)."""
        dep = self.wanted()
        if dep is None:
            return
        with self._lock:
            active = self._active
            failed = (dep.sha256.lower(), dep.url) in self._failed
        if active is not None and active.sha256 == dep.sha256.lower():
            if self._announced != active.sha256:
                self._announced = active.sha256
                self._status(dep, "active")
            return
        if not failed:
            self.apply(dep)

    def apply(self, dep: Deployment) -> bool:
        """Download, verify and activate one deployment; False (and ``failed``) on error."""
        sha = dep.sha256.lower()
        logger.info("deploying %s (%s) from %s", dep.version, sha[:12], dep.url)
        try:
            if not _SHA256.fullmatch(sha):
                raise DeployError(f"deployment {dep.version}: sha256 {dep.sha256!r} is not 64 hex")
            self._status(dep, "downloading")
            path = self._download(dep.url, sha)
            self._status(dep, "verifying")
            try:
                model = self._verify(path, dep.version, sha)
            except Exception:
                active = self.current()
                if active is None or active.sha256 != sha:
                    path.unlink(missing_ok=True)  # an artifact that does not work is not kept
                raise
        except Exception as e:
            error = str(e) or e.__class__.__name__
            logger.error("deployment %s failed: %s (keeping the current model)", dep.version, error)
            with self._lock:
                self._failed.add((sha, dep.url))
            self._status(dep, "failed", error)
            return False
        with self._lock:
            previous, self._active = self._active, model  # the frame loop picks it up next frame
        self._remember(dep, path)
        self._announced = sha
        self._status(dep, "active")
        logger.info("model %s active", dep.version)
        keep = {path.name} | ({_artifact_name(previous.sha256)} if previous else set())
        self._prune(keep)
        return True

    def _download(self, url: str, sha: str) -> Path:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        dest = self.models_dir / _artifact_name(sha)
        if dest.is_file() and sha256_file(dest) == sha:
            logger.info("%s already downloaded", dest.name)
            return dest
        return Path(self._fetch(url, dest, sha))

    def _verify(self, path: Path, version: str, sha: str) -> ActiveModel:
        actual = sha256_file(path)
        if actual != sha:
            path.unlink(missing_ok=True)
            raise DeployError(f"{path.name}: sha256 is {actual}, the deployment says {sha}")
        clf = self._load(path)
        size = int(getattr(getattr(getattr(clf, "meta", None), "preprocess", None), "size", 32))
        out = clf.predict([np.zeros((size, size, 3), np.uint8)])
        probs = list(getattr(out[0], "probs", {}).values()) if out else []
        if len(out) != 1 or not probs or not np.all(np.isfinite(probs)):
            raise DeployError(f"{path.name}: the test inference gave no usable probabilities")
        bundle_version = getattr(clf, "version", version)
        if bundle_version != version:
            logger.info("bundle says version %s; reporting it as %s", bundle_version, version)
        return ActiveModel(clf, version, sha)

    def _load_onnx(self, path: Path) -> Any:
        from whichbin.inference import OnnxClassifier

        return OnnxClassifier(path, rules=self.rules)

    def _remember(self, dep: Deployment, path: Path) -> None:
        record = {
            "version": dep.version,
            "sha256": dep.sha256.lower(),
            "file": path.name,
            "url": dep.url,
            "activated": iso(self.clock()),
        }
        tmp = self.models_dir / (CURRENT_FILE + ".tmp")
        try:
            tmp.write_text(json.dumps(record, indent=2))
            os.replace(tmp, self.models_dir / CURRENT_FILE)
        except OSError as e:
            logger.error("cannot write %s (%s): a restart will not remember this model", tmp, e)

    def _prune(self, keep: set[str]) -> None:
        """Delete old artifacts, keeping the active and the previous model."""
        for p in self.models_dir.glob("*.onnx"):
            if _SHA256.fullmatch(p.stem) and p.name not in keep:
                try:
                    p.unlink()
                except OSError as e:
                    logger.warning("cannot delete old model %s (%s)", p, e)

    def _status(self, dep: Deployment, state: str, error: str | None = None) -> None:
        status = DeploymentStatus(version=dep.version, state=state, error=error)  # type: ignore[arg-type]
        self._last_status = status
        self._publish(status)

    def _publish(self, status: DeploymentStatus) -> None:
        ok = self.publisher.publish(
            self.topics.deployment_status, status.to_json(), qos=1, retain=True
        )
        self._status_unsent = not ok
        if not ok:
            logger.warning("deployment status %s not sent: broker not connected", status.state)


def _artifact_name(sha: str) -> str:
    return f"{sha}.onnx"
