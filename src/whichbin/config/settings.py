"""The whole tree and how it is loaded.

Load order (later wins): defaults → YAML file (``--config`` or ``WHICHBIN_CONFIG``) →
environment (``WHICHBIN_<SECTION>__<KEY>``) → command-line flags. Every field has a
default and a description; unknown keys are errors that name the YAML key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from whichbin.config.base import Section
from whichbin.config.devices import PiConfig, WebConfig
from whichbin.config.edge import EdgeConfig
from whichbin.config.mqtt import DeployConfig, MqttConfig
from whichbin.config.pipeline import PipelineConfig
from whichbin.errors import ConfigError, validation_message

CONFIG_ENV = "WHICHBIN_CONFIG"  # the config file when --config is not given


class Settings(Section):
    """The whole tree (``whichbin config check`` validates a file against it)."""

    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    edge: EdgeConfig = Field(
        default_factory=EdgeConfig, description="Edge device options (whichbin edge run)"
    )
    pi: PiConfig = Field(
        default_factory=PiConfig, description="Display device options (whichbin pi display)"
    )
    web: WebConfig = Field(default_factory=WebConfig, description="Server options (whichbin web)")


def _env_overrides(prefix: str = "WHICHBIN_") -> dict[str, Any]:
    """``WHICHBIN_PIPELINE__TRAINING__EPOCHS=5`` → {"pipeline": {"training": {"epochs": "5"}}}."""
    from whichbin.textfile import parse_yaml  # config imports no other part of whichbin

    out: dict[str, Any] = {}
    for key, value in os.environ.items():
        if not key.startswith(prefix) or "__" not in key:
            continue
        parts = key[len(prefix) :].lower().split("__")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = parse_yaml(value, key, "YAML value", ConfigError)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    from whichbin.textfile import load_yaml  # only when a file is read

    raw = load_yaml(Path(path), "config", ConfigError) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    # A file holding only the pipeline section's keys is accepted as-is; another key is
    # reported as the top-level key it is (``egde:``, not ``pipeline.egde``).
    if raw and not set(raw) & set(Settings.model_fields):
        unknown = [str(k) for k in raw if k not in PipelineConfig.model_fields]
        if unknown:
            key = " ".join(unknown[0][:80].split())  # one line, whatever the key holds
            raise ConfigError(
                f"{path}: {key}: unknown key; the top level holds the sections "
                f"{', '.join(Settings.model_fields)} (or, in a pipeline-only file, its keys)"
            )
        raw = {"pipeline": raw}
    return raw


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults, then the YAML file, then environment, then ``overrides`` (CLI flags).

    Args:
        path: The config file; None: none (the CLI passes ``--config`` or $WHICHBIN_CONFIG).
        overrides: Flags that were given, as a tree (``{"mqtt": {"url": ...}}``).

    Raises:
        ConfigError: One line naming the file and the key.
    """
    raw = _read_yaml(path) if path is not None else {}
    raw = _merge(raw, _env_overrides())
    raw = _merge(raw, overrides or {})
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(validation_message(e, str(path) if path else "settings")) from e


def config_hash(model: BaseModel) -> str:
    """Stable hash of a config section (used in lineage and step cache keys)."""
    return hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:16]
