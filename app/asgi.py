"""The ASGI application for servers that import it by name (`portal serve --workers N`,
uvicorn, granian): settings come from litestar.toml and the environment, which must name the
database (DATABASE_URL)."""

from app import create_app
from app.serving import freeze_startup_objects

application = create_app()
freeze_startup_objects()
