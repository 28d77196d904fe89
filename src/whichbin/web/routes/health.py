"""``GET /healthz``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from whichbin.web.deps import DeployerDep, RegistryDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(registry: RegistryDep, deployer: DeployerDep) -> dict[str, Any]:
    """Up when the registry answers; says whether approvals publish deployments."""
    return {
        "status": "ok",
        "registry": registry.uri,
        "versions": len(registry.list()),
        "deploy_on_approval": deployer is not None,
    }
