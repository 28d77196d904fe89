"""``whichbin web``: dashboard, REST API and artifact serving."""

from whichbin.web.app import WebSettings, create_app

__all__ = ["WebSettings", "create_app"]
