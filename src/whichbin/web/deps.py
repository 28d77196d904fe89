"""Typed FastAPI dependencies: the services ``create_app`` put on ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from whichbin.config import Settings
from whichbin.deploy.publish import Deployer
from whichbin.registry.base import Registry


def get_registry(request: Request) -> Registry:
    return request.app.state.registry


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_deployer(request: Request) -> Deployer | None:
    return request.app.state.deployer


RegistryDep = Annotated[Registry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DeployerDep = Annotated[Deployer | None, Depends(get_deployer)]
