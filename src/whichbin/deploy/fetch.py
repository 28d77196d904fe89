"""Download a deployed artifact and verify it: the edge's side of a deployment.

The file at ``dest`` is only ever replaced by a complete, verified copy: bytes stream to a
temporary ``.part`` file next to it, and an atomic rename happens after the size and the
sha256 match. The ``.part`` file is removed on every failure, and leftovers of a killed
process are removed before the next download.

With a ``FetchPolicy`` (what an edge passes) the URL must be allowed first: https (to the
listed hosts, if any), http only to the listed hosts, file only under one directory, and
never a file that is not a regular file (``/dev/zero``). Redirects are checked the same
way. The download is capped at the signed size (and the policy's ``max_size``).
"""

from __future__ import annotations

import http.client
import logging
import os
import stat
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from whichbin.config import FetchPolicy
from whichbin.errors import DeployError
from whichbin.inference import HashingCopy, sha256_file

logger = logging.getLogger(__name__)

CHUNK = 1 << 16
DEFAULT_MAX_SIZE = FetchPolicy().max_size


class FetchRefused(DeployError):
    """The URL or size is not allowed by the fetch policy (retrying will not help)."""

    permanent = True


def _within(path: Path, root: Path) -> bool:
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return real == base or base in real.parents


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse a URL the policy does not allow (nothing is opened).

    Raises:
        FetchRefused: One line naming the URL and the setting that would allow it.
    """
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    where = "edge.security.fetch"
    if scheme not in policy.schemes:
        allowed = ", ".join(policy.schemes) or "none"
        raise FetchRefused(
            f"{url}: refused: scheme {scheme or '(none)'} not in {where}.schemes ({allowed})"
        )
    host = (parsed.hostname or "").lower()
    if scheme == "https" and policy.https_hosts and host not in policy.https_hosts:
        raise FetchRefused(f"{url}: refused: host {host} not in {where}.https_hosts")
    if scheme == "http" and host not in policy.http_hosts:
        raise FetchRefused(
            f"{url}: refused: plain http only to the registry host ({where}.http_hosts: "
            f"{', '.join(policy.http_hosts) or 'none'}); use https"
        )
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise FetchRefused(f"{url}: refused: file:// URLs must name a local path")
        if policy.file_root is None:
            raise FetchRefused(f"{url}: refused: file:// needs {where}.file_root")
        if not _within(Path(unquote(parsed.path)), policy.file_root):
            raise FetchRefused(f"{url}: refused: not under {where}.file_root {policy.file_root}")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL the policy allows."""

    def __init__(self, policy: FetchPolicy | None) -> None:
        self.policy = policy

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201
        if self.policy is not None:
            check_url(newurl, self.policy)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open(url: str, timeout: float, policy: FetchPolicy | None, cap: int) -> IO[bytes]:
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise DeployError(f"{url}: file:// URLs must name a local path")
        path = Path(unquote(parsed.path))
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed by the caller
        except OSError as e:
            raise DeployError(f"cannot fetch {url}: {e.strerror}") from e
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # /dev/zero, a FIFO, a folder
            f.close()
            raise FetchRefused(f"{url}: refused: not a regular file")
        return f
    if scheme in ("http", "https"):
        request = urllib.request.Request(url, headers={"User-Agent": "whichbin"})
        opener = urllib.request.build_opener(_CheckedRedirects(policy))
        try:
            response: Any = opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            raise DeployError(f"cannot fetch {url}: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise DeployError(f"cannot fetch {url}: {reason}") from e
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > cap:
            response.close()
            raise DeployError(f"{url}: {length} bytes announced, more than the {cap} allowed")
        return response  # type: ignore[no-any-return]
    raise DeployError(f"cannot fetch {url}: unsupported URL scheme (use http(s):// or file://)")


class _Capped:
    """A stream that refuses to yield more than ``cap`` bytes (the download is aborted)."""

    def __init__(self, src: IO[bytes], cap: int, url: str, signed: bool) -> None:
        self.src, self.cap, self.url, self.signed, self.got = src, cap, url, signed, 0

    def read(self, n: int = -1) -> bytes:
        block = self.src.read(min(n if n >= 0 else self.cap + 1, self.cap + 1 - self.got))
        self.got += len(block)
        if self.got > self.cap:
            raise DeployError(
                f"{self.url}: more than the {self.cap} bytes "
                f"{'signed' if self.signed else 'allowed'}: download aborted"
            )
        return block


def _remove_leftovers(dest: Path) -> None:
    """``.part`` files of ``dest`` left by a killed process."""
    for part in dest.parent.glob(f".{dest.name}.*.part"):
        try:
            part.unlink()
        except OSError as e:
            logger.warning("cannot remove the partial download %s (%s)", part, e)


def fetch_artifact(
    url: str,
    dest: Path,
    expected_sha256: str,
    timeout: float = 30,
    *,
    size: int | None = None,
    policy: FetchPolicy | None = None,
) -> Path:
    """Download ``url`` to ``dest`` and verify its size and sha256.

    If ``dest`` already holds a file with the expected sha256 nothing is downloaded.

    Args:
        url: ``http://``, ``https://`` or ``file://`` URL of the artifact.
        dest: Final path; its parent directory is created if needed.
        expected_sha256: Hex digest the bytes must have (from the deployment message).
        timeout: Socket timeout in seconds for HTTP(S).
        size: Bytes the artifact has (the signed size): more aborts the download.
        policy: Allowed URLs and the size cap; None (the registry's own copies) allows any
            URL, capped at ``DEFAULT_MAX_SIZE``.

    Returns:
        ``dest``.

    Raises:
        FetchRefused: The policy does not allow the URL or the size (nothing was opened).
        DeployError: Naming the URL, when the download fails, is too large, or the size or
            sha256 differs. No partial file is left behind.
    """
    dest = Path(dest)
    expected = expected_sha256.strip().lower()
    limit = policy.max_size if policy is not None else DEFAULT_MAX_SIZE
    if policy is not None:
        check_url(url, policy)
    if size is not None and size > limit:
        raise FetchRefused(f"{url}: refused: {size} bytes is over the {limit} allowed")
    cap = limit if size is None else size
    if dest.is_file() and sha256_file(dest) == expected:
        logger.debug("%s already holds sha256 %s", dest, expected[:12])
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(dest)
    except OSError as e:
        raise DeployError(f"cannot fetch {url}: cannot create {dest.parent}: {e.strerror}") from e
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        copy = HashingCopy()
        with os.fdopen(fd, "wb") as out, _open(url, timeout, policy, cap) as src:
            try:
                actual = copy.copy(_Capped(src, cap, url, size is not None), out, CHUNK)  # type: ignore[arg-type]
            except (OSError, http.client.HTTPException) as e:  # e.g. a timeout mid-download
                raise DeployError(
                    f"cannot fetch {url}: interrupted after {copy.size} bytes: {e}"
                ) from e
            out.flush()
            os.fsync(out.fileno())
        got = copy.size
        if size is not None and got != size:
            raise DeployError(f"{url}: {got} bytes, the deployment says {size}: not installed")
        if actual != expected:
            raise DeployError(
                f"{url}: sha256 mismatch (expected {expected[:12]}…, got {actual[:12]}…, "
                f"{got} bytes): the artifact was not installed"
            )
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("fetched %s → %s (%d bytes, sha256 verified)", url, dest, got)
    return dest
