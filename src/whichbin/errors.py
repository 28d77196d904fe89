"""Errors whichbin raises on purpose; the CLI turns each into one line and exit code 1."""


class WhichbinError(Exception):
    """Base error: the message says what is wrong and how to fix it."""


class ConfigError(WhichbinError):
    """A config file, flag or environment variable is invalid (message names the key)."""


class DataError(WhichbinError):
    """A dataset, image or manifest is unusable (message names the file)."""


class ModelError(WhichbinError):
    """A model bundle is missing, corrupt or lacks the SPEC metadata."""


class RegistryError(WhichbinError):
    """A registry operation is not allowed or the version does not exist."""


class DeployError(WhichbinError):
    """A deployment could not be published, fetched or verified."""
