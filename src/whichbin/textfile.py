"""Read the text and YAML files people hand to whichbin: any failure is one line naming the file.

A file that is not UTF-8, holds binary bytes, is a directory, or is YAML that PyYAML
cannot build (bad syntax, an impossible date, nesting too deep) raises the caller's
``WhichbinError`` subclass with the path, never a UnicodeDecodeError or a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from whichbin.errors import WhichbinError


def read_text(path: Path, what: str, error: type[WhichbinError], newline: str | None = None) -> str:
    """The UTF-8 text of ``path`` (``what`` names it in messages: "labels file")."""
    try:
        with Path(path).open(encoding="utf-8", newline=newline) as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise error(
            f"{path}: {what} is not UTF-8 text (byte {e.start} is {e.object[e.start]:#04x}); "
            "save it as UTF-8"
        ) from e
    except OSError as e:
        raise error(f"{path}: cannot read {what} ({e.strerror or type(e).__name__})") from e


def load_yaml(path: Path, what: str, error: type[WhichbinError]) -> Any:
    """The YAML document in ``path`` (safe loader: plain data only)."""
    return parse_yaml(read_text(path, what, error), str(path), what, error)


def parse_yaml(text: str, where: str, what: str, error: type[WhichbinError]) -> Any:
    """The YAML in ``text`` (safe loader); failures are one line starting with ``where``
    (a file, an environment variable, a setting)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise error(f"{where}: invalid {what}: {str(e).splitlines()[0]}") from e
    except (ValueError, OverflowError) as e:  # e.g. a date PyYAML recognises but cannot build
        raise error(f"{where}: invalid {what}: {' '.join(str(e).split())}") from e
    except RecursionError as e:
        raise error(f"{where}: {what} is nested too deeply to be a whichbin file") from e
