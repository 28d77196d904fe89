"""ASGI guards in front of every route: the Host allow-list and the request body limit."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


def host_of(header: str) -> str | None:
    """The host name of a ``Host`` header without its port (``[::1]:80`` → ``::1``),
    lower-case; None when malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        rest = header[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return header[1:end] or None
    name, _, port = header.partition(":")
    if not name or (port and not port.isdigit()) or any(c in name for c in "/@\\ "):
        return None
    return name


def allowed_hosts(
    configured: Iterable[str], bind_host: str, artifact_base_url: str | None
) -> frozenset[str]:
    """The Host names served: ``web.allowed_hosts``, the bind address unless it is a
    wildcard (``0.0.0.0``, ``::``), and the host edges fetch artifacts from."""
    hosts = {h.strip().lower().strip("[]") for h in configured}
    if bind_host not in ("0.0.0.0", "::", ""):
        hosts.add(bind_host.lower().strip("[]"))
    if artifact_base_url:
        name = urlsplit(artifact_base_url).hostname
        if name:
            hosts.add(name.lower())
    return frozenset(hosts)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves only this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HostGuard:
    """400 for a request whose ``Host`` is not in the allow-list: a page on another site
    whose name was rebound to this address (DNS rebinding) is not served."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.any = "*" in hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.any:
            raw = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_of(raw) not in self.hosts:
                logger.warning("refused Host %r (not in web.allowed_hosts)", raw[:100])
                await _refuse(send, 400, f"Host {raw[:100]!r} is not in web.allowed_hosts")
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for a request body over ``limit`` bytes, declared (Content-Length) or streamed
    (chunked). Bodies within the limit are read here and handed on whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = f"request body over {self.limit} bytes (web.max_body_bytes)"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _refuse(send, 413, too_big)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _refuse(send, 413, too_big)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replay() -> Message:
            return whole.pop() if whole else await receive()

        await self.app(scope, replay, send)
