"""The portal as one Piccolo app: every table class of its domains, and its migrations folder.

The tables are found in each package's `tables` module (and the throttle's), so a table added
there is part of the app, and of the schema test, without being listed a second time.
"""

from piccolo.conf.apps import AppConfig, table_finder

from app.config import PROJECT_ROOT
from app.db import APP_NAME

PACKAGE = PROJECT_ROOT / "app"

# Each package's tables module, and the throttle's counters.
TABLE_MODULES = [
    *(f"app.{path.parent.name}.tables" for path in sorted(PACKAGE.glob("*/tables.py"))),
    "app.throttle",
]

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(PROJECT_ROOT / "migrations"),
    table_classes=table_finder(TABLE_MODULES, exclude_imported=True),
)
