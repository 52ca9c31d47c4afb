"""Piccolo's configuration: the one engine and the app registry.

The engine's address is filled in at start-up (see app.db.configure), after the embedded
PostgreSQL, if any, is running. The registry (which only Piccolo's migrations and command line
read) is built when first asked for: importing Piccolo's migration machinery costs about half a
second, which every `portal` command would otherwise pay.
"""

from typing import Any

from app.db import PortalEngine

DB = PortalEngine(config={})


def __getattr__(name: str) -> Any:
    if name == "APP_REGISTRY":
        from piccolo.conf.apps import AppRegistry

        registry = AppRegistry(apps=["app.piccolo_app"])
        globals()["APP_REGISTRY"] = registry
        return registry
    raise AttributeError(name)
