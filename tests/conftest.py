"""Test set-up: a real PostgreSQL, a fresh migrated database per run, one transaction per test.

With DATABASE_URL set, the tests use that server; otherwise they start the embedded one in
.data/test-postgres. Integration tests run the app on the test's own event loop and task
(httpx's ASGI transport), so every query of a request joins the test's transaction, which is
rolled back afterwards. Tests that need committed data (workers, browsers) say so with the
`committed` fixture and clean up after themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from app.accounts import passwords
from app.config import PROJECT_ROOT, Settings, load_settings
from app.db import EmbeddedPostgres, create_database
from tests.databases import drop_database, with_database
from tests.serving import TEST_SECRET_KEY

TEST_DATA_DIR = PROJECT_ROOT / ".data" / "test-postgres"
INTROSPECTION_SECRET = "leerlingen-introspection-secret"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


class PostgresServer:
    """Where test databases are created: the server at DATABASE_URL, or an embedded one."""

    def __init__(self) -> None:
        self.external = os.environ.get("DATABASE_URL", "")
        self.embedded: EmbeddedPostgres | None = None

    def start(self) -> None:
        if not self.external:
            self.embedded = EmbeddedPostgres(TEST_DATA_DIR)
            self.embedded.start(database="portal_test_admin")

    def url(self, database: str) -> str:
        if self.embedded:
            return self.embedded.url(database)
        return with_database(self.external, database)

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def stop(self) -> None:
        if self.embedded:
            self.embedded.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    asyncio.run(drop_abandoned_databases(server.admin_url))
    yield server
    server.stop()


async def drop_abandoned_databases(admin_url: str) -> None:
    """Databases left by test runs that were killed: their process no longer exists."""
    import asyncpg

    from app.db import process_exists

    connection = await asyncpg.connect(admin_url)
    try:
        names = [
            row["datname"]
            for row in await connection.fetch(
                "SELECT datname FROM pg_database"
                " WHERE datname ~ '^portal_(test|browser|serve)_[0-9]+$'"
            )
        ]
    finally:
        await connection.close()
    for name in names:
        if not process_exists(int(name.rsplit("_", 1)[1])):
            await drop_database(admin_url, name)


def fresh_database(server: PostgresServer, name: str) -> str:
    """A new database with every migration applied; returns its URL."""
    from app import db
    from app.piccolo_conf import DB

    async def make() -> None:
        await drop_database(server.admin_url, name)
        await create_database(server.admin_url, name)

    asyncio.run(make())
    url = server.url(name)
    settings = make_settings(url)

    async def migrate() -> None:
        db.configure(DB, url, settings)
        async with db.connected(DB):
            await db.migrate()

    asyncio.run(migrate())
    return url


def make_settings(url: str, **mail: Any) -> Settings:
    settings = load_settings(env={"PORTAL_SECRET_KEY": TEST_SECRET_KEY})
    return dataclasses.replace(
        settings,
        api_secrets={"api_informat_sas_leerlingen": INTROSPECTION_SECRET},
        database=dataclasses.replace(settings.database, url=url, pool_min_size=1),
        mail=dataclasses.replace(settings.mail, backend="mailbox", worker_in_process=False, **mail),
    )


@pytest.fixture(scope="session")
def database_url(postgres: PostgresServer) -> Iterator[str]:
    name = f"portal_test_{os.getpid()}"
    url = fresh_database(postgres, name)
    yield url
    asyncio.run(drop_database(postgres.admin_url, name))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2id with small parameters, so that tests do not spend seconds hashing.

    Tests that measure timing put the production parameters back (`real_password_hashing`).
    """
    original = passwords.hasher
    passwords.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    passwords.hasher = original


@pytest.fixture
def real_password_hashing() -> Iterator[None]:
    cheap = passwords.hasher
    passwords.hasher = PasswordHasher()
    passwords._dummy_hash = None
    yield
    passwords.hasher = cheap
    passwords._dummy_hash = None


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    from app import create_app

    application = create_app(settings)
    async with application.lifespan():
        yield application


@pytest.fixture
async def transaction(app: Any) -> AsyncIterator[None]:
    """Everything the test and its requests write is rolled back afterwards."""
    from app.piccolo_conf import DB

    async with DB.transaction() as tx:
        yield
        await tx.rollback()


@pytest.fixture
async def committed(app: Any) -> AsyncIterator[None]:
    """For tests that need data other connections can see; tables are emptied afterwards."""
    yield
    from app.mail.tables import OutboxMail

    await OutboxMail.raw(
        "TRUNCATE outbox_mail, account_token, web_session, throttle, account, partner CASCADE"
    )


class Browser(httpx.AsyncClient):
    """An httpx client that behaves like a browser's forms: it sends the CSRF token."""

    @property
    def csrf_token(self) -> str | None:
        """The token the last page carried (its cookie; `__Host-` prefixed in production)."""
        return self.cookies.get("csrftoken") or self.cookies.get("__Host-csrftoken")

    async def submit(
        self, url: str, data: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        if self.csrf_token is None:
            await self.get("/")
        form = {"_csrf_token": self.csrf_token or "", **(data or {})}
        return await self.post(url, data=form, **kwargs)


def browser_for(app: Any, base_url: str = "http://testserver", **transport: Any) -> Browser:
    """A client for an app running on the test's own event loop and task."""
    return Browser(transport=httpx.ASGITransport(app=app, **transport), base_url=base_url)


@pytest.fixture
async def client(app: Any, transaction: None) -> AsyncIterator[Browser]:
    async with browser_for(app) as browser:
        yield browser


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://[^\s\"'<>]+", text)


@pytest.fixture
async def committed_client(app: Any, committed: None) -> AsyncIterator[Browser]:
    """A client whose requests commit, each on its own pooled connection."""
    async with browser_for(app) as browser:
        yield browser


@pytest.fixture
def fake_resend() -> Iterator[Any]:
    """A local stand-in for Resend's HTTP API (tests/fake_resend.py)."""
    from tests.fake_resend import FakeResend

    fake = FakeResend().start()
    yield fake
    fake.stop()
