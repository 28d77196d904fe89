"""``/artifacts``: model files for edges to download, and ``/reports`` for humans.

Those of approved versions are public (edges fetch them; deployments are signed); those
of pending and rejected versions need a login."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from whichbin.errors import RegistryError
from whichbin.registry.base import ApprovalStatus
from whichbin.registry.base import version_id as make_version_id
from whichbin.web.auth import CallerDep, may_read
from whichbin.web.deps import RegistryDep

router = APIRouter(tags=["artifacts"])

REPORT_INDEXES = ("index.html", "report.html", "report.md", "report.json")
# Reports share the dashboard's origin: sandboxed, a script in one cannot use the session.
REPORT_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}


@router.api_route("/artifacts/{name}/{n}/model.onnx", methods=["GET", "HEAD"])
def artifact(
    name: str, n: int, request: Request, registry: RegistryDep, who: CallerDep
) -> Response:
    """The artifact bytes; ``ETag`` and ``X-Sha256`` carry its sha256."""
    try:
        version = registry.get(make_version_id(name, n))
        may_read(request, who, version.status == ApprovalStatus.APPROVED)
        path = registry.artifact_path(version.id)
    except RegistryError as e:
        raise HTTPException(404, str(e)) from e
    etag = f'"{version.sha256}"'
    headers = {"ETag": etag, "X-Sha256": version.sha256, "Cache-Control": "no-cache"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{name}-{n}.onnx",
        headers=headers,
    )


def _report_root(
    registry: RegistryDep, name: str, n: int, request: Request, who: CallerDep
) -> Path:
    try:
        version = registry.get(make_version_id(name, n))
    except RegistryError as e:
        raise HTTPException(404, str(e)) from e
    may_read(request, who, version.status == ApprovalStatus.APPROVED)
    report = version.report
    if not report or not Path(report).exists():
        raise HTTPException(404, f"{name}/{n}: no report recorded")
    return Path(report).resolve()


@router.get("/reports/{name}/{n}/{path:path}", response_model=None)
def report(
    name: str, n: int, path: str, request: Request, registry: RegistryDep, who: CallerDep
) -> Response:
    """The version's report: a file, or a file inside the report folder (sandboxed)."""
    root = _report_root(registry, name, n, request, who)
    if root.is_file():
        if path not in ("", root.name):
            raise HTTPException(404, f"{name}/{n}: no report file {path}")
        return FileResponse(root, headers=REPORT_HEADERS)
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.exists():
        raise HTTPException(404, f"{name}/{n}: no report file {path}")
    if target.is_dir():
        for index in REPORT_INDEXES:
            if (target / index).is_file():
                return FileResponse(target / index, headers=REPORT_HEADERS)
        return HTMLResponse(_listing(name, n, root, target), headers=REPORT_HEADERS)
    return FileResponse(target, headers=REPORT_HEADERS)


def _listing(name: str, n: int, root: Path, folder: Path) -> str:
    from html import escape
    from urllib.parse import quote

    rel = folder.relative_to(root)
    items = "".join(
        f'<li><a href="/reports/{quote(name)}/{n}/{quote(str((rel / p.name).as_posix()))}">'
        f"{escape(p.name)}</a></li>"
        for p in sorted(folder.iterdir())
    )
    return f"<!doctype html><title>{escape(name)}/{n} report</title><ul>{items}</ul>"
