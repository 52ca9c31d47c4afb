"""What a process remembers of the clients it serves, so that /connect/token answers a client
it has seen without a database round trip.

PostgreSQL keeps the memory true. The triggers of migration t04 send a client id on
`identity_changed` when anything the token endpoint relies on commits (a client, its secrets,
its scope grants, its application's status). Each process listens on a connection of its own
and forgets that client. Rate-limit blocks are shared on `identity_blocked` the same way.

The memory is trusted only while the listening connection (app.listener) is known to be
healthy: its heartbeat proves that each notification committed up to a second ago has been
handled. So a revoked secret, a removed scope or an archived application stops working in
every process within a second, even when a listener dies without a word. (Notifications
normally arrive within milliseconds; the heartbeat only bounds the worst case.) Without a
healthy listener each request reads the database, as if there were no memory.

A record read inside a transaction is never kept, because it may never commit. Inside a
transaction the memory is not read either, because the transaction may see its own changes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg

from app.listener import Listener
from app.piccolo_conf import DB

CHANGED = "identity_changed"
BLOCKED = "identity_blocked"
MOST_CLIENTS = 10_000

Record = TypeVar("Record")


class ClientCache(Generic[Record]):
    """Records by client id, and rate-limit blocks by throttle key, for one process."""

    def __init__(self, load: Callable[[str], Awaitable[Record | None]]) -> None:
        self._load = load
        self._records: dict[str, Record] = {}
        self._blocks: dict[str, float] = {}
        self._generation = 0
        self.listener = Listener(
            "identity",
            {CHANGED: self.forget, BLOCKED: self._blocked_elsewhere},
            on_connect=self._connected,
        )

    @property
    def fresh(self) -> bool:
        return self.listener.heard and not DB.transaction_exists()

    async def get(self, client_id: str, *, reload: bool = False) -> Record | None:
        """The client's record; `reload` reads the database even when it is remembered."""
        if not reload and self.fresh:
            record = self._records.get(client_id)
            if record is not None:
                return record
        generation = self._generation
        record = await self._load(client_id)
        # Kept only if nothing changed while it was read, and the listener still hears.
        if record is not None and generation == self._generation and self.fresh:
            if len(self._records) >= MOST_CLIENTS:
                self._records.clear()
            self._records[client_id] = record
        return record

    def forget(self, client_id: str) -> None:
        self._generation += 1
        if client_id == "*":
            self._records.clear()
        else:
            self._records.pop(client_id, None)

    async def caught_up(self) -> None:
        """Return once every notification committed before the call has been handled."""
        await self.listener.caught_up()

    def seconds_blocked(self, key: str) -> int | None:
        """Seconds a throttle key is still blocked for, or None when only the database knows."""
        if not self.fresh:
            return None
        until = self._blocks.get(key)
        if until is None:
            return 0
        left = until - time.monotonic()
        if left <= 0:
            del self._blocks[key]
            return 0
        return int(left) + 1

    def block(self, key: str, seconds: float) -> None:
        self._blocks[key] = time.monotonic() + seconds

    # The listener.

    def start(self, url: str) -> None:
        self.listener.start(url)

    async def stop(self) -> None:
        await self.listener.stop()

    async def _connected(self, connection: asyncpg.Connection) -> None:
        # Whatever changed while nobody listened is unknown: start from nothing.
        self.forget("*")
        rows = await connection.fetch(
            "SELECT key, extract(epoch FROM blocked_until - now())::float AS seconds"
            " FROM throttle WHERE key LIKE 'token:%' AND blocked_until > now()"
        )
        self._blocks = {row["key"]: time.monotonic() + row["seconds"] for row in rows}

    def _blocked_elsewhere(self, payload: str) -> None:
        key, _, seconds = payload.rpartition(" ")
        with contextlib.suppress(ValueError):
            self.block(key, float(seconds))
