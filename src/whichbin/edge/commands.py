"""MQTT input of one edge device: commands on ``<prefix>/<device>/set/<command>`` and
corrections on ``<prefix>/<device>/correction``.

Commands are a table: each name maps to the model of its payload and a handler. A
payload is optional JSON (SPEC.md):

* empty, not JSON, or JSON that is not an object: the command runs with its defaults
  (a payload that is not JSON is logged);
* an object: validated against the command's model (unknown keys are ignored, so Home
  Assistant's ``{}`` button press is fine); a value that does not fit is logged with
  its field and the command does not run.

=========  ======================================  ====================================
command    payload                                 what
=========  ======================================  ====================================
pause      (none)                                  stop classifying (frames still read)
resume     (none)                                  classify again
reload     ``{"background": false, "model": true}``  re-apply the model; ``background``
                                                   also re-learns the empty scene
=========  ======================================  ====================================
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from whichbin.contract import BINS, Correction, Topics
from whichbin.edge.runner import ActiveModel, EdgeRunner, StaticModel
from whichbin.errors import validation_message

logger = logging.getLogger(__name__)


class NoArgs(BaseModel):
    """A command without options (any keys are ignored)."""

    model_config = ConfigDict(extra="ignore")


class ReloadArgs(NoArgs):
    background: bool = False  # also forget the background and learn the empty scene again
    model: bool = True  # re-apply the model (the wanted deployment, or re-read --model)


@dataclass(frozen=True)
class Command:
    """One entry of the table: the payload's model and what runs with it."""

    args: type[BaseModel]
    run: Callable[[Any], None]


def parse_args(args: type[BaseModel], payload: bytes, where: str) -> BaseModel | None:
    """A command's options from its payload (see the module's doc); None: do not run it."""
    data: Any = {}
    if payload.strip():
        try:
            data = json.loads(payload)
        except ValueError:
            logger.warning("%s: payload is not JSON; running it with its defaults", where)
            data = {}
    if not isinstance(data, dict):
        data = {}
    try:
        return args.model_validate(data)
    except ValidationError as e:
        logger.error("ignoring %s", validation_message(e, where, top="payload"))
        return None


class CommandTable:
    """Subscribes ``set/<command>`` for every command of the table and dispatches them.

    Args:
        topics: the device's topics.
        commands: name → Command; the names are the ``<command>`` of the topic.
    """

    def __init__(self, topics: Topics, commands: Mapping[str, Command]) -> None:
        self.topics = topics
        self.commands = dict(commands)

    def attach(self, client: Any) -> None:
        """Subscribe on an MqttClient (re-subscribed by it after every reconnect)."""
        for name in self.commands:
            client.subscribe(
                self.topics.command(name),
                lambda topic, payload, name=name: self.handle(name, topic, payload),
            )

    def handle(self, name: str, topic: str, payload: bytes) -> bool:
        """Run one command (called on the network thread); False when it did not run."""
        command = self.commands[name]
        args = parse_args(command.args, payload, f"command {name} on {topic}")
        if args is None:
            return False
        logger.info("%s requested on %s", name, topic)
        command.run(args)
        return True


def edge_commands(runner: EdgeRunner, reload_model: Callable[[], None]) -> dict[str, Command]:
    """The edge's command table: ``pause``, ``resume`` and ``reload`` (contract.COMMANDS).

    Args:
        runner: the frame loop paused, resumed and told to re-learn the scene.
        reload_model: re-applies the model (must not block: the network thread calls it).
    """

    def reload(args: ReloadArgs) -> None:
        if args.background:
            runner.relearn()
        if args.model:
            reload_model()

    return {
        "pause": Command(NoArgs, lambda _: runner.pause()),
        "resume": Command(NoArgs, lambda _: runner.resume()),
        "reload": Command(ReloadArgs, reload),
    }


class FileModelReloader:
    """``reload`` of a fixed ``--model PATH``: load the file again on a thread and swap it
    in if it changed (an operator replaced it); a file that does not load is logged and
    the current model kept.

    Args:
        models: the runner's fixed model.
        path: the bundle file.
        load: path → ActiveModel.
    """

    def __init__(
        self, models: StaticModel, path: Path, load: Callable[[Path], ActiveModel]
    ) -> None:
        self.models, self.path, self.load = models, path, load

    def __call__(self) -> None:
        threading.Thread(target=self.reload, name="whichbin-reload", daemon=True).start()

    def reload(self) -> None:
        try:
            model = self.load(self.path)
        except Exception as e:
            logger.error("reload: cannot load %s (%s); keeping the current model", self.path, e)
            return
        if model.sha256 != self.models.model.sha256:
            self.models.replace(model)
            logger.info("reload: now running %s (%s)", model.version, model.sha256[:12])
        else:
            logger.info("reload: %s is unchanged", self.path)


class Corrections:
    """Files corrections from ``<prefix>/<device>/correction`` with the snapshot store.

    Args:
        snapshots: a ``SnapshotStore``, or None (snapshots off: corrections are logged).
        bins: the bins a correction may name now (the rule pack's or the running model's):
            a bin becomes a folder of training data, so any other name is dropped.
    """

    def __init__(
        self, topics: Topics, snapshots: Any, bins: Callable[[], Collection[str]] = lambda: BINS
    ) -> None:
        self.topics = topics
        self.snapshots = snapshots
        self.bins = bins

    def attach(self, client: Any) -> None:
        client.subscribe(self.topics.correction, self.handle)

    def handle(self, topic: str, payload: bytes) -> None:
        try:
            correction = Correction.model_validate_json(payload)
        except ValidationError as e:
            logger.error("ignoring correction on %s", validation_message(e, topic, top="payload"))
            return
        bins = self.bins()
        if correction.bin not in bins:
            logger.error(
                "ignoring correction on %s: %.40r is not a bin (expected one of %s)",
                topic,
                correction.bin,
                ", ".join(sorted(bins)),
            )
            return
        if self.snapshots is None:
            logger.warning(
                "correction of %s to %s ignored: snapshots are off (set --data-dir)",
                correction.event_id,
                correction.bin,
            )
            return
        try:
            self.snapshots.correct(correction)
        except ValueError as e:
            logger.error("ignoring correction on %s: %s", topic, e)
