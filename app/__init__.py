"""Partnerportaal: the partner portal and identity server. See README.md."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

# Piccolo finds its engine through this module; set before any table is queried.
os.environ.setdefault("PICCOLO_CONF", "app.piccolo_conf")

if TYPE_CHECKING:
    from litestar import Litestar

    from app.config import Settings


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the web application; the database URL must be known (see app.cli)."""
    from app.server import build

    return build(settings)
