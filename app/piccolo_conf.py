"""Piccolo's configuration: the one engine and the app registry.

The engine's address is filled in at start-up (see app.db.configure), after the embedded
PostgreSQL, if any, is running.
"""

from piccolo.conf.apps import AppRegistry

from app.db import PortalEngine

DB = PortalEngine(config={})

APP_REGISTRY = AppRegistry(apps=["app.piccolo_app"])
