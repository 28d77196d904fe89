"""Options every command group shares, declared once, and the one way commands read config.

Every command that reads config takes ``--config`` (or ``$WHICHBIN_CONFIG``); the file is
read first, then the environment (``WHICHBIN_<SECTION>__<KEY>``), then the flags that
were given (:func:`load_config`). A flag left out has the value ``None`` and does not
override the file.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from whichbin.config import CONFIG_ENV, Settings

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar=CONFIG_ENV,
        help="YAML config file (whichbin config check validates it); flags override it",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout")]
RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        envvar="WHICHBIN_REGISTRY",
        help="Registry: a local directory or sagemaker://GROUP \\[default: pipeline.registry.uri "
        "in the config, ./whichbin-registry]",
    ),
]
MqttOpt = Annotated[
    str | None,
    typer.Option(
        "--mqtt",
        envvar="WHICHBIN_MQTT",
        help="Broker URL: mqtt://\\[user@]host\\[:port] or mqtts:// (TLS); the password from "
        "$WHICHBIN_MQTT_PASSWORD or --password-file \\[default: mqtt.url in the config, "
        "mqtt://127.0.0.1:1883]",
    ),
]
PrefixOpt = Annotated[
    str | None, typer.Option("--prefix", help="MQTT topic prefix \\[default: whichbin]")
]
PasswordFileOpt = Annotated[
    str | None, typer.Option("--password-file", help="File holding the MQTT password")
]
CaFileOpt = Annotated[str | None, typer.Option("--ca-file", help="CA bundle for mqtts://")]
CertFileOpt = Annotated[
    str | None,
    typer.Option("--cert-file", help="Client certificate for mqtts:// (whichbin certs create)"),
]
KeyFileOpt = Annotated[
    str | None, typer.Option("--key-file", help="The client certificate's private key")
]
ArtifactBaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--artifact-base-url",
        envvar="WHICHBIN_ARTIFACT_BASE_URL",
        help="Base URL edges fetch artifacts from (whichbin web), e.g. http://host:8080 "
        "\\[default: a file:// URL into the registry]",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option("--timeout", min=0.1, help="Seconds to wait for the broker \\[default: 10]"),
]
NoDeployOpt = Annotated[
    bool,
    typer.Option(
        "--no-deploy",
        help="Record in the registry only: publish (or retract) no fleet deployment",
    ),
]


def mqtt_flags(
    mqtt: str | None = None,
    prefix: str | None = None,
    password_file: str | None = None,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> dict[str, Any]:
    """The broker flags as dotted config keys (for :func:`load_config`)."""
    return {
        "mqtt.url": mqtt,
        "mqtt.prefix": prefix,
        "mqtt.password_file": password_file,
        "mqtt.ca_file": ca_file,
        "mqtt.cert_file": cert_file,
        "mqtt.key_file": key_file,
    }


def overrides(flags: dict[str, Any]) -> dict[str, Any]:
    """``{"edge.decision.timeout": 8, "edge.fps": None}`` → ``{"edge": {"decision":
    {"timeout": 8}}}``: the flags that were given, as a config tree."""
    tree: dict[str, Any] = {}
    for dotted, value in flags.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = str(value) if isinstance(value, Path) else value
    return tree


def load_config(config: Path | None, flags: dict[str, Any] | None = None) -> Settings:
    """The settings a command runs with: ``config`` file, environment, then ``flags``.

    Raises:
        ConfigError: One line naming the file (or ``settings``) and the key.
    """
    from whichbin.config import load_settings

    return load_settings(config, overrides(flags or {}))


def option_group(
    into: str, options: dict[str, tuple[Any, Any]], combine: Callable[..., Any]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator giving a command the ``options`` (name → (annotation, default)) in place
    of its parameter ``into``, which receives ``combine(**given)`` instead."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        params: list[inspect.Parameter] = []
        for name, p in signature.parameters.items():
            if name != into:
                params.append(p)
                continue
            params += [
                inspect.Parameter(n, p.kind, default=d, annotation=a)
                for n, (a, d) in options.items()
            ]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name, default) for name, (_, default) in options.items()}
            return command(*args, **{into: combine(**given)}, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return wrapper

    return decorate


broker_options = option_group(
    "broker",
    {
        "mqtt": (MqttOpt, None),
        "prefix": (PrefixOpt, None),
        "password_file": (PasswordFileOpt, None),
        "ca_file": (CaFileOpt, None),
        "cert_file": (CertFileOpt, None),
        "key_file": (KeyFileOpt, None),
    },
    mqtt_flags,
)
"""Give a command ``--mqtt``, ``--prefix``, ``--password-file``, ``--ca-file``,
``--cert-file`` and ``--key-file`` (TLS with a client certificate); it
receives them as ``broker``: the given ones as dotted config keys (``mqtt.url``, ...),
ready for :func:`load_config`."""
