"""``whichbin web``: dashboard, REST API and artifact serving."""

from whichbin.web.app import create_app

__all__ = ["create_app"]
