"""Who is calling: HTTP Basic, an API token (``Authorization: Bearer``) or a session cookie.

``require(action)`` is the dependency each write (and each read of a pending or rejected
artifact) declares; what a role may do is :func:`whichbin.security.users.allowed`.
Cookie sessions also need the ``X-CSRF-Token`` header on every state-changing request,
and a browser's ``Origin`` must be this server's own; Basic and Bearer callers are exempt
(a browser never adds those headers on its own to a cross-site request).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request

from whichbin.config import WebConfig
from whichbin.security.users import User, UserStore, allowed
from whichbin.web.ratelimit import FailureLimiter

logger = logging.getLogger(__name__)

SESSION_COOKIE = "whichbin_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SESSIONS = 10_000
CHALLENGE = {"WWW-Authenticate": 'Basic realm="whichbin", charset="UTF-8"'}


@dataclass(frozen=True)
class Session:
    name: str
    created: str  # the user's: a new user under the same name does not inherit the session
    csrf: str
    expires: float


@dataclass(frozen=True)
class Caller:
    """An authenticated caller and how they proved it."""

    user: User
    via: Literal["basic", "bearer", "session"]
    csrf: str | None = None


class Auth:
    """The users store, the login throttle and the dashboard's sessions (in memory: a
    restart logs everyone out)."""

    def __init__(self, users: UserStore | None, cfg: WebConfig) -> None:
        self.users = users
        self.limiter = FailureLimiter(cfg.login_attempts, cfg.login_window)
        self.session_seconds = cfg.session_hours * 3600
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()  # the server's worker threads share the sessions

    def has_users(self) -> bool:
        return self.users is not None and bool(self.users.list())

    # -- credentials ----------------------------------------------------------------
    def check_password(self, request: Request, name: str, password: str) -> User:
        """The user, after the throttle and the password check.

        Raises:
            HTTPException: 429 while throttled, else 401 for a wrong name or password.
        """
        keys = [f"client:{_client(request)}", f"user:{name.lower()}"]
        wait = self.limiter.retry_after(keys, time.monotonic())
        if wait:
            raise HTTPException(
                429, f"too many failed logins; retry in {wait} s", {"Retry-After": str(wait)}
            )
        user = self.users.authenticate(name, password) if self.users else None
        if user is None:
            self.limiter.fail(keys, time.monotonic())
            logger.warning("failed login for %r from %s", name[:64], _client(request))
            raise HTTPException(401, "wrong user name or password", CHALLENGE)
        return user

    def check_token(self, request: Request, token: str) -> User:
        keys = [f"client:{_client(request)}"]
        wait = self.limiter.retry_after(keys, time.monotonic())
        if wait:
            raise HTTPException(
                429, f"too many failed logins; retry in {wait} s", {"Retry-After": str(wait)}
            )
        user = self.users.user_for_token(token) if self.users else None
        if user is None:
            self.limiter.fail(keys, time.monotonic())
            logger.warning("unknown API token from %s", _client(request))
            raise HTTPException(401, "unknown API token", CHALLENGE)
        return user

    # -- sessions -------------------------------------------------------------------
    def open_session(self, user: User) -> tuple[str, Session]:
        """A new session id (the cookie's value) and its session."""
        now = time.time()
        sid = secrets.token_urlsafe(32)
        expires = now + self.session_seconds
        session = Session(user.name, user.created, secrets.token_urlsafe(32), expires)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                for key in [k for k, s in self._sessions.items() if s.expires <= now]:
                    del self._sessions[key]
                while len(self._sessions) >= MAX_SESSIONS:
                    del self._sessions[next(iter(self._sessions))]
            self._sessions[_digest(sid)] = session
        return sid, session

    def close_session(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(_digest(sid), None)

    def session_caller(self, sid: str) -> Caller | None:
        session = self._sessions.get(_digest(sid))
        if session is None or session.expires <= time.time():
            return None
        user = self.users.get(session.name) if self.users else None
        if user is None or user.created != session.created:
            self.close_session(sid)  # removed since (maybe added again): it ends with them
            return None
        return Caller(user, "session", session.csrf)


def _digest(sid: str) -> str:
    # Sessions are kept under a hash of the id: a memory dump does not hand out cookies.
    return hashlib.sha256(sid.encode()).hexdigest()


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def get_auth(request: Request) -> Auth:
    return request.app.state.auth


def caller(request: Request, auth: Annotated[Auth, Depends(get_auth)]) -> Caller | None:
    """Who is calling, or None (anonymous).

    Raises:
        HTTPException: 401 for a malformed or wrong credential, 429 while throttled.
    """
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return Caller(auth.check_token(request, value.strip()), "bearer")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            name, sep, password = decoded.partition(":")
            if not sep:
                raise HTTPException(401, "malformed Basic credentials", CHALLENGE)
            return Caller(auth.check_password(request, name, password), "basic")
        raise HTTPException(401, "Authorization: use Basic or Bearer", CHALLENGE)
    sid = request.cookies.get(SESSION_COOKIE)
    return auth.session_caller(sid) if sid else None


CallerDep = Annotated[Caller | None, Depends(caller)]


def check_csrf(request: Request, who: Caller) -> None:
    """Refuse a cookie-authenticated state change without this session's CSRF token.

    Raises:
        HTTPException: 403.
    """
    if who.via != "session" or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not (who.csrf and hmac.compare_digest(sent.encode(), who.csrf.encode())):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (see GET /api/me)")


def check_origin(request: Request) -> None:
    """A browser's ``Origin`` (else ``Referer``) must name this server: the same scheme,
    host and port as the request's own (its ``Host`` header; behind a TLS proxy, uvicorn's
    ``--proxy-headers`` gives the scheme).

    Raises:
        HTTPException: 403 for a cross-site request.
    """
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return
    own = _origin_of(f"{request.url.scheme}://{request.headers.get('host', '')}")
    if own is None or _origin_of(origin) != own:
        raise HTTPException(403, f"cross-site request from {origin[:100]!r} refused")


DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_of(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of a URL, the port filled in for http(s); None when malformed
    (``null``, a bad port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS.get(scheme)


def require(action: str) -> Callable[..., User]:
    """A dependency: the calling user when their role may do ``action``.

    401 when nobody is logged in, 403 when the role may not (or a cookie request lacks
    its CSRF token).
    """
    allowed(None, action)  # an unknown action fails at import time, not per request

    def dependency(request: Request, who: CallerDep) -> User:
        if who is None:
            raise HTTPException(401, f"log in to {action.replace('_', ' ')}", CHALLENGE)
        if not allowed(who.user.role, action):
            raise HTTPException(
                403, f"{who.user.name} ({who.user.role}) may not {action.replace('_', ' ')}"
            )
        if request.method not in SAFE_METHODS:
            # A browser with cached Basic credentials would send them cross-site too.
            check_origin(request)
            check_csrf(request, who)
        return who.user

    return dependency


def may_read(request: Request, who: Caller | None, approved: bool) -> None:
    """Approved artifacts are public (devices fetch them, and they are signed); pending
    and rejected ones need a login.

    Raises:
        HTTPException: 401 or 403.
    """
    if not approved:
        require("read_pending")(request, who)


ApproverDep = Annotated[User, Depends(require("approve"))]
RejecterDep = Annotated[User, Depends(require("reject"))]
DeployerUserDep = Annotated[User, Depends(require("deploy"))]
