"""The deployment follower: retained deployment messages → a verified model, swapped in live.

It listens to ``<prefix>/fleet/deployment`` and ``<prefix>/<device>/deployment`` (both
retained; the device's own one overrides the fleet's, and clearing it falls back to the
fleet's). For a deployment whose sha256 differs from the active model it publishes
``downloading`` → fetches the artifact into ``models_dir`` → ``verifying`` (sha256, load,
one dummy inference) → hands the new model to the frame loop → ``active``. Any failure
publishes ``failed`` with the error and keeps the old model. The work runs on its own
thread so the MQTT network thread is never blocked by a download.

The artifacts and the record of the active model (``current.json``) are the model
store's (``edge/model_store.py``), so an edge restarted without a broker still has its
model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from whichbin.contract import Deployment, DeploymentStatus, Topics, utc_now
from whichbin.edge.model_store import CURRENT_FILE, SHA256, FetchFn, ModelStore
from whichbin.edge.runner import ActiveModel
from whichbin.errors import DeployError, validation_message
from whichbin.messaging.mqtt import Publisher
from whichbin.rules import RulePack
from whichbin.security.guard import DeploymentGuard

logger = logging.getLogger(__name__)

LoadFn = Callable[[Path], Any]


class DeploymentFollower:
    """Follows deployments for one device and provides the active model (a ModelProvider).

    Args:
        device_id: this device.
        models_dir: the model store's folder (artifacts and ``current.json``).
        publisher: where deployment status goes (retained, QoS 1).
        prefix: topic prefix.
        rules: a rule pack overriding the bundles' own.
        guard: which deployments are accepted (signature, URL policy, retries); default
            one with no trusted key, which refuses every deployment.
        fetch: ``(url, dest, sha256, size) -> Path``; default ``guard.fetch``.
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
        guard: DeploymentGuard | None = None,
        fetch: FetchFn | None = None,
        load: LoadFn | None = None,
        clock: Callable[[], Any] = utc_now,
        fallback_default: bool = False,
        settle: float = 0.2,
    ) -> None:
        self.topics = Topics(device_id, prefix)
        self.guard = guard or DeploymentGuard()
        self.store = ModelStore(Path(models_dir), fetch or self.guard.fetch, clock)
        self.publisher = publisher
        self.rules = rules
        self._load = load or self._load_onnx
        self.fallback_default = fallback_default
        self.settle = settle
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._active: ActiveModel | None = None
        self._fleet: Deployment | None = None
        self._device: Deployment | None = None
        self._failed = self.guard.retries()  # (sha256, url) that failed: retried later
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
        try:
            stored = self.store.remembered()
            if stored is None:
                return None
            model = ActiveModel(self._load(stored.path), stored.version, stored.sha256)
        except Exception as e:
            record = self.store.dir / CURRENT_FILE
            logger.warning("%s: cannot restore the remembered model (%s)", record, e)
            return None
        logger.info("restored model %s from %s", model.version, self.store.dir / CURRENT_FILE)
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
            with self._lock:
                retry_in = self._failed.wait(time.monotonic())
            self._wake.wait(retry_in)
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
            failed = self._failed.blocked((dep.sha256.lower(), dep.url), time.monotonic())
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
            if not SHA256.fullmatch(sha):
                raise DeployError(f"deployment {dep.version}: sha256 {dep.sha256!r} is not 64 hex")
            self.guard.check(dep)  # signature and URL: refused before anything is fetched
            self._status(dep, "downloading")
            path = self.store.download(dep.url, sha, dep.size)
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
                permanent = isinstance(e, DeployError) and getattr(e, "permanent", False)
                self._failed.failed((sha, dep.url), time.monotonic(), permanent)
            self._status(dep, "failed", error)
            return False
        with self._lock:
            previous, self._active = self._active, model  # the frame loop picks it up next frame
            self._failed.succeeded((sha, dep.url))
        self.store.remember(dep.version, sha, path, dep.url)
        self._announced = sha
        self._status(dep, "active")
        logger.info("model %s active", dep.version)
        self.store.prune({sha} | ({previous.sha256} if previous else set()))  # keep one back
        return True

    def _verify(self, path: Path, version: str, sha: str) -> ActiveModel:
        self.store.check(path, sha)
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
