"""Home Assistant MQTT discovery for one edge device: the payload builders (pure), the
``HomeAssistant`` publisher the edge runs, and ``uninstall_home_assistant``.

Home Assistant reads retained configs on
``<discovery prefix>/<component>/<node_id>/<object_id>/config`` and creates one device
(``whichbin <device>``) with these entities:

=====================  ==========  ===============================================
object_id              component   what
=====================  ==========  ===============================================
``bin``                sensor      the current bin (``state``): compost, landfill,
                                   recycling, idle or unsure (an enum sensor)
``decision``           event       one HA event per item (``event``), its
                                   ``event_type`` the bin, or ``unsure``
``<bin>_count``        sensor      items per bin and ``unsure_count``,
                                   ``total_count`` (``counters``, total_increasing)
``pause`` ``resume``   button      the ``set/<command>`` commands
``reload``
``snapshot``           image       the latest decision's JPEG (only when snapshots
                                   are published)
=====================  ==========  ===============================================

All share the device's availability topic (``online``/``offline``, the last will).
The edge publishes the configs on every connect and again when Home Assistant announces
itself (``online`` on ``<discovery prefix>/status``, after HA restarts). Removing a device
is publishing an empty retained payload to each config topic (``removal_topics``), which
``whichbin edge uninstall-ha`` does.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from whichbin import __version__
from whichbin.contract import BINS, COMMANDS, IDLE, OFFLINE, ONLINE, UNSURE, Topics

logger = logging.getLogger(__name__)

DEFAULT_DISCOVERY_PREFIX = "homeassistant"
BIRTH_TOPIC_SUFFIX = "status"  # HA announces itself on <prefix>/status: "online"
COUNTER_KEYS = (*BINS, UNSURE, "total")
_NODE_CHARS = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class DiscoveryMessage:
    """One retained discovery config."""

    topic: str
    payload: dict[str, Any]


def node_id(device_id: str) -> str:
    """The discovery ``node_id`` for a device: ``whichbin_<device>``, HA's allowed characters."""
    return "whichbin_" + _NODE_CHARS.sub("_", device_id)


def counters_topic(topics: Topics) -> str:
    """Retained per-bin counters of a device (a whichbin extension topic)."""
    return f"{topics.prefix}/{topics.device}/counters"


def snapshot_topic(topics: Topics) -> str:
    """Retained JPEG of the latest decision (a whichbin extension topic, opt-in)."""
    return f"{topics.prefix}/{topics.device}/snapshot"


def birth_topic(discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> str:
    return f"{discovery_prefix}/{BIRTH_TOPIC_SUFFIX}"


def config_topic(component: str, device_id: str, object_id: str, discovery_prefix: str) -> str:
    return f"{discovery_prefix}/{component}/{node_id(device_id)}/{object_id}/config"


def _entities(topics: Topics, snapshots: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """(component, object_id, entity-specific keys) for every entity of a device."""
    entities: list[tuple[str, str, dict[str, Any]]] = [
        (
            "sensor",
            "bin",
            {
                "name": "Bin",
                "state_topic": topics.state,
                "value_template": "{{ value_json.bin }}",
                "json_attributes_topic": topics.state,
                "device_class": "enum",
                "options": [*BINS, IDLE, UNSURE],
                "icon": "mdi:delete-variant",
            },
        ),
        (
            "event",
            "decision",
            {
                "name": "Decision",
                "state_topic": topics.event,
                "event_types": [*BINS, UNSURE],
                # HA wants {"event_type": …}; our event says bin + decision.
                "value_template": (
                    "{{ {'event_type': value_json.bin if value_json.decision == 'decided' "
                    "else 'unsure', 'bin': value_json.bin, 'label': value_json.label, "
                    "'confidence': value_json.confidence, 'id': value_json.id} | to_json }}"
                ),
                "icon": "mdi:recycle",
            },
        ),
    ]
    for key in COUNTER_KEYS:
        entities.append(
            (
                "sensor",
                f"{key}_count",
                {
                    "name": f"{key.capitalize()} items",
                    "state_topic": counters_topic(topics),
                    "value_template": f"{{{{ value_json.{key} }}}}",
                    "state_class": "total_increasing",
                    "unit_of_measurement": "items",
                    "icon": "mdi:counter",
                },
            )
        )
    for command in COMMANDS:
        entities.append(
            (
                "button",
                command,
                {
                    "name": command.capitalize(),
                    "command_topic": topics.command(command),
                    "payload_press": "{}",
                    "entity_category": "config",
                    "icon": {"pause": "mdi:pause", "resume": "mdi:play", "reload": "mdi:reload"}[
                        command
                    ],
                },
            )
        )
    if snapshots:
        entities.append(
            (
                "image",
                "snapshot",
                {
                    "name": "Snapshot",
                    "image_topic": snapshot_topic(topics),
                    "content_type": "image/jpeg",
                },
            )
        )
    return entities


def discovery_messages(
    device_id: str,
    *,
    prefix: str = "whichbin",
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX,
    sw_version: str = "",
    device_name: str | None = None,
    snapshots: bool = False,
) -> list[DiscoveryMessage]:
    """Every retained discovery config for one edge device.

    Args:
        device_id: the ``<device>`` in whichbin topics.
        prefix: the whichbin topic prefix.
        discovery_prefix: Home Assistant's discovery prefix.
        sw_version: whichbin's version, shown on the device page.
        device_name: the device's name in HA (default ``whichbin <device>``).
        snapshots: also an image entity for the published snapshots.
    """
    topics = Topics(device_id, prefix)
    node = node_id(device_id)
    device = {
        "identifiers": [node],
        "name": device_name or f"whichbin {device_id}",
        "manufacturer": "whichbin",
        "model": "whichbin edge camera",
        "sw_version": sw_version,
    }
    origin = {"name": "whichbin", "sw_version": sw_version}
    out = []
    for component, object_id, keys in _entities(topics, snapshots):
        payload = {
            **keys,
            "unique_id": f"{node}_{object_id}",
            "availability_topic": topics.availability,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": device,
            "origin": origin,
        }
        if component in ("sensor", "event"):
            payload["qos"] = 1  # (the image schema has no qos)
        topic = config_topic(component, device_id, object_id, discovery_prefix)
        out.append(DiscoveryMessage(topic, payload))
    return out


def removal_topics(
    device_id: str,
    *,
    prefix: str = "whichbin",
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX,
) -> list[str]:
    """Every config topic a device may have published (empty retained payloads remove them)."""
    return [
        m.topic
        for m in discovery_messages(
            device_id, prefix=prefix, discovery_prefix=discovery_prefix, snapshots=True
        )
    ]


class HomeAssistant:
    """Publishes one device's discovery configs (retained, QoS 1) through an MQTT client.

    Args:
        client: an ``MqttClient`` (``publish`` and ``subscribe``).
        device_id: the ``<device>`` in whichbin topics.
        prefix: the whichbin topic prefix.
        discovery_prefix: Home Assistant's discovery prefix.
        device_name: the device's name in HA (default ``whichbin <device>``).
        snapshots: also the image entity (snapshots are published).
    """

    def __init__(
        self,
        client: Any,
        device_id: str,
        *,
        prefix: str = "whichbin",
        discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX,
        device_name: str | None = None,
        snapshots: bool = False,
    ) -> None:
        self.client = client
        self.discovery_prefix = discovery_prefix
        self.messages = discovery_messages(
            device_id,
            prefix=prefix,
            discovery_prefix=discovery_prefix,
            sw_version=__version__,
            device_name=device_name,
            snapshots=snapshots,
        )

    def attach(self) -> None:
        """Publish again whenever Home Assistant announces itself (re-subscribed on reconnect)."""
        self.client.subscribe(birth_topic(self.discovery_prefix), self._on_birth)

    def publish(self) -> int:
        """Publish the retained discovery configs; returns how many were handed to the broker."""
        sent = sum(
            bool(self.client.publish(m.topic, json.dumps(m.payload), qos=1, retain=True))
            for m in self.messages
        )
        logger.info("Home Assistant discovery: %d configs published", sent)
        return sent

    def _on_birth(self, topic: str, payload: bytes) -> None:
        if payload.strip() == b"online":  # HA restarted: it asks for the configs again
            self.publish()


def uninstall_home_assistant(
    client: Any,
    device_id: str,
    *,
    prefix: str = "whichbin",
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX,
    timeout: float = 5.0,
) -> list[str]:
    """Clear a device's retained discovery configs (empty retained payloads).

    Args:
        client: a started, connected ``MqttClient``.

    Returns:
        The config topics cleared (acknowledged by the broker).
    """
    cleared = []
    for topic in removal_topics(device_id, prefix=prefix, discovery_prefix=discovery_prefix):
        if client.publish_confirmed(topic, b"", qos=1, retain=True, timeout=timeout):
            cleared.append(topic)
        else:
            logger.warning("could not clear %s", topic)
    return cleared
