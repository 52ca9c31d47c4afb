"""Lets the `piccolo` command line find the portal's configuration."""

from app.piccolo_conf import *  # noqa: F403
