"""``/api/login``, ``/api/logout``, ``/api/me``: the dashboard's cookie session."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from whichbin.web.auth import (
    CHALLENGE,
    SESSION_COOKIE,
    Auth,
    CallerDep,
    check_origin,
    get_auth,
)

router = APIRouter(prefix="/api", tags=["session"])
AuthDep = Annotated[Auth, Depends(get_auth)]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


@router.post("/login")
def login(
    body: LoginRequest, request: Request, response: Response, auth: AuthDep
) -> dict[str, Any]:
    """Check the password and set the session cookie (HttpOnly, SameSite=Strict, Secure
    over TLS). State-changing requests with the cookie send ``csrf_token`` back in the
    ``X-CSRF-Token`` header. 401 for a wrong password; 429 after too many."""
    check_origin(request)
    user = auth.check_password(request, body.username, body.password)
    sid, session = auth.open_session(user)
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        max_age=int(auth.session_seconds),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return {"user": user.name, "role": user.role, "csrf_token": session.csrf}


@router.post("/logout")
def logout(request: Request, response: Response, auth: AuthDep) -> dict[str, Any]:
    """End the cookie's session (nothing to do without one)."""
    check_origin(request)
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        auth.close_session(sid)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return {"logged_out": bool(sid)}


@router.get("/me")
def me(who: CallerDep) -> dict[str, Any]:
    """Who the credentials or the cookie belong to; 401 when nobody is logged in."""
    if who is None:
        raise HTTPException(401, "not logged in", CHALLENGE)
    return {"user": who.user.name, "role": who.user.role, "via": who.via, "csrf_token": who.csrf}
