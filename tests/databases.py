"""Databases the tests make and drop on the test server (the portal itself only creates)."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg


async def drop_database(admin_url: str, name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def with_database(url: str, name: str) -> str:
    """The same server address with another database name."""
    return urlsplit(url)._replace(path=f"/{name}").geturl()
