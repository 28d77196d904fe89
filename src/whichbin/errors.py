"""Errors whichbin raises on purpose; the CLI turns each into one line and exit code 1."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


class WhichbinError(Exception):
    """Base error: the message says what is wrong and how to fix it."""


class ConfigError(WhichbinError):
    """A config file, flag or environment variable is invalid (message names the key)."""


class SigningKeyError(ConfigError):
    """The approver's signing key is missing or unusable (a config problem, not the broker)."""


class DataError(WhichbinError):
    """A dataset, image or manifest is unusable (message names the file)."""


class ModelError(WhichbinError):
    """A model bundle is missing, corrupt or lacks the SPEC metadata."""


class RegistryError(WhichbinError):
    """A registry operation is not allowed or the version does not exist."""


class DeployError(WhichbinError):
    """A deployment could not be published, fetched or verified."""


def validation_message(
    e: ValidationError,
    source: str = "",
    *,
    prefix: Sequence[str | int] = (),
    top: str = "(top level)",
    flag: bool = False,
) -> str:
    """The one-line message for a pydantic error: ``source: key.path: what is wrong``.

    Args:
        e: The error; its first problem is reported.
        source: What was being read (a file, a topic); omitted when empty.
        prefix: Keys the validated data sat under (``("edge",)`` for a config section).
        top: Named instead of a key when the problem is with the whole input.
        flag: Name the key as the command-line flag it came from (``--min-side``).
    """
    err = e.errors()[0]
    loc = ".".join(str(p) for p in (*prefix, *err["loc"])) or top
    if flag and err["loc"]:
        loc = "--" + str(err["loc"][0]).replace("_", "-")
    message = f"{source}: {loc}: {err['msg']}" if source else f"{loc}: {err['msg']}"
    return " ".join(message.split())  # one line, even for a key holding a newline
