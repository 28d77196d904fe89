"""Download a deployed artifact and verify it: the edge's side of a deployment.

The file at ``dest`` is only ever replaced by a complete, verified copy: bytes stream to a
temporary ``.part`` file next to it, and an atomic rename happens after the size and the
sha256 match. The ``.part`` file is removed on every failure, and leftovers of a killed
process are removed before the next download.

With a ``FetchPolicy`` (what an edge passes) the URL must be allowed first: https (to the
listed hosts, if any), http only to the listed hosts, file only under one directory, and
never a file that is not a regular file (``/dev/zero``, a FIFO). A file is opened by its
resolved path, one component at a time from the root down, refusing symbolic links, so a
link swapped in after the check cannot lead out of the root. Redirects are checked the
same way. The download is capped at the signed size (and the policy's ``max_size``).
"""

from __future__ import annotations

import errno
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


def _local_path(url: str) -> Path:
    """The path of a ``file://`` URL.

    Raises:
        FetchRefused: It names another host, or holds a NUL byte (``%00``).
    """
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise FetchRefused(f"{url}: refused: file:// URLs must name a local path")
    path = unquote(parsed.path)
    if "\0" in path:
        raise FetchRefused(f"{url}: refused: the path holds a NUL byte")
    return Path(path)


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
        path = _local_path(url)
        if policy.file_root is None:
            raise FetchRefused(f"{url}: refused: file:// needs {where}.file_root")
        if not _within(path, policy.file_root):
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
        root = policy.file_root if policy is not None else None
        return _open_file(url, _local_path(url), root)
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


def _open_file(url: str, path: Path, root: Path | None) -> IO[bytes]:
    """Open the regular file ``path`` names, never following a link out of ``root``.

    The resolved path is opened component by component below the resolved root with
    O_NOFOLLOW (a link swapped in since ``check_url`` fails to open) and O_NONBLOCK (a FIFO
    does not block); what was opened must be a regular file.
    """
    nofollow = os.O_RDONLY | os.O_NOFOLLOW
    real = Path(os.path.realpath(path))
    if root is None:
        base, parts = Path(real.anchor), real.parts[1:]
    else:
        base = Path(os.path.realpath(root))
        if base not in real.parents:
            raise FetchRefused(f"{url}: refused: not under edge.security.fetch.file_root {root}")
        parts = real.relative_to(base).parts
    fd = -1
    try:
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = nofollow | (os.O_NONBLOCK if last else os.O_DIRECTORY)
            fd, parent = os.open(part, flags, dir_fd=fd), fd
            os.close(parent)
        mode = os.fstat(fd).st_mode
    except OSError as e:
        if fd >= 0:
            os.close(fd)
        if e.errno in (errno.ELOOP, errno.ENOTDIR):  # e.g. a link swapped in since resolved
            raise FetchRefused(
                f"{url}: refused: {real} holds a symbolic link or a file where a folder should be"
            ) from e
        raise DeployError(f"cannot fetch {url}: {e.strerror}") from e
    if not parts or not stat.S_ISREG(mode):  # /dev/zero, a FIFO, a folder
        os.close(fd)
        raise FetchRefused(f"{url}: refused: not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


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
