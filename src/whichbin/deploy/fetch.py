"""Download a deployed artifact and verify it: the edge's side of a deployment.

The file at ``dest`` is only ever replaced by a complete, verified copy: bytes stream to a
temporary file next to it, and an atomic rename happens after the sha256 matches.
"""

from __future__ import annotations

import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from whichbin.errors import DeployError
from whichbin.inference import HashingCopy, sha256_file

logger = logging.getLogger(__name__)

CHUNK = 1 << 16


def _open(url: str, timeout: float) -> BinaryIO:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise DeployError(f"{url}: file:// URLs must name a local path")
        path = Path(unquote(parsed.path))
        try:
            return open(path, "rb")  # noqa: SIM115 - closed by the caller
        except OSError as e:
            raise DeployError(f"cannot fetch {url}: {e.strerror}") from e
    if parsed.scheme in ("http", "https"):
        request = urllib.request.Request(url, headers={"User-Agent": "whichbin"})
        try:
            return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
        except urllib.error.HTTPError as e:
            raise DeployError(f"cannot fetch {url}: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise DeployError(f"cannot fetch {url}: {reason}") from e
    raise DeployError(f"cannot fetch {url}: unsupported URL scheme (use http(s):// or file://)")


def fetch_artifact(url: str, dest: Path, expected_sha256: str, timeout: float = 30) -> Path:
    """Download ``url`` to ``dest`` and verify its sha256.

    If ``dest`` already holds a file with the expected sha256 nothing is downloaded.

    Args:
        url: ``http://``, ``https://`` or ``file://`` URL of the artifact.
        dest: Final path; its parent directory is created if needed.
        expected_sha256: Hex digest the bytes must have (from the deployment message).
        timeout: Socket timeout in seconds for HTTP(S).

    Returns:
        ``dest``.

    Raises:
        DeployError: Naming the URL, when the download fails or the sha256 differs. No
            partial file is left at ``dest``.
    """
    dest = Path(dest)
    expected = expected_sha256.strip().lower()
    if dest.is_file() and sha256_file(dest) == expected:
        logger.debug("%s already holds sha256 %s", dest, expected[:12])
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DeployError(f"cannot fetch {url}: cannot create {dest.parent}: {e.strerror}") from e
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        copy = HashingCopy()
        with os.fdopen(fd, "wb") as out, _open(url, timeout) as src:
            try:
                actual = copy.copy(src, out, CHUNK)
            except (OSError, http.client.HTTPException) as e:  # e.g. a timeout mid-download
                raise DeployError(
                    f"cannot fetch {url}: interrupted after {copy.size} bytes: {e}"
                ) from e
            out.flush()
            os.fsync(out.fileno())
        size = copy.size
        if actual != expected:
            raise DeployError(
                f"{url}: sha256 mismatch (expected {expected[:12]}…, got {actual[:12]}…, "
                f"{size} bytes): the artifact was not installed"
            )
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("fetched %s → %s (%d bytes, sha256 verified)", url, dest, size)
    return dest
