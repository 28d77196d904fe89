"""One strict config tree of plain pydantic sections; each component receives its section.

Sections import no runtime code (``whichbin.config`` loads without the edge, the web
server or torch). The tree, by key in the YAML file::

    pipeline:   PipelineConfig  (data: DataConfig, training: TrainingConfig,
                                 gate: GateConfig, registry: RegistryConfig)
    mqtt:       MqttConfig
    deploy:     DeployConfig
    edge:       EdgeConfig      (capture, presence, decision, snapshots, homeassistant, http,
                                 security)
    pi:         PiConfig
    web:        WebConfig

See :mod:`whichbin.config.settings` for the load order.
"""

from whichbin.config.base import Section
from whichbin.config.devices import PiConfig, WebConfig
from whichbin.config.edge import (
    FULL_FRAME,
    CaptureConfig,
    DecisionConfig,
    EdgeConfig,
    EdgeSecurityConfig,
    FetchPolicy,
    HomeAssistantConfig,
    HttpConfig,
    PresenceConfig,
    SnapshotConfig,
    check_roi,
)
from whichbin.config.mqtt import DeployConfig, MqttConfig
from whichbin.config.pipeline import (
    DataConfig,
    GateConfig,
    PipelineConfig,
    RegistryConfig,
    TrainingConfig,
)
from whichbin.config.settings import (
    CONFIG_ENV,
    Settings,
    config_hash,
    load_settings,
)

__all__ = [
    "CONFIG_ENV",
    "FULL_FRAME",
    "CaptureConfig",
    "DataConfig",
    "DecisionConfig",
    "DeployConfig",
    "EdgeConfig",
    "EdgeSecurityConfig",
    "FetchPolicy",
    "GateConfig",
    "HomeAssistantConfig",
    "HttpConfig",
    "MqttConfig",
    "PiConfig",
    "PipelineConfig",
    "PresenceConfig",
    "RegistryConfig",
    "Section",
    "Settings",
    "SnapshotConfig",
    "TrainingConfig",
    "WebConfig",
    "check_roi",
    "config_hash",
    "load_settings",
]
