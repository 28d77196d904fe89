"""Web fixtures: a registry with users in it, and clients that send a Host the app serves."""

from __future__ import annotations

import base64

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.registry.fixtures import prefix, registry  # noqa: F401
from whichbin.registry.local import SqliteRegistry
from whichbin.security.users import UserStore

PASSWORD = "correct horse battery"  # every test user's
USERS = {"ana": "approver", "vic": "viewer", "adm": "admin"}


def basic(name: str, password: str = PASSWORD) -> dict[str, str]:
    """The Authorization header of HTTP Basic credentials."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def local_client(app: FastAPI, **kwargs: object) -> TestClient:
    """A TestClient whose requests say ``Host: localhost`` (its default, ``testserver``,
    is not a host the app serves)."""
    return TestClient(app, base_url="http://localhost", **kwargs)  # type: ignore[arg-type]


@pytest.fixture()
def users(registry: SqliteRegistry) -> UserStore:  # noqa: F811
    """The registry's users: ana (approver), vic (viewer) and adm (admin)."""
    store = UserStore.for_registry(registry.root)
    for name, role in USERS.items():
        store.add(name, role, PASSWORD)
    return store
