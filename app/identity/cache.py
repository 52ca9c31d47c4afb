"""What a process remembers of the clients it serves, so that /connect/token answers a client
it has seen without a database round trip.

PostgreSQL keeps the memory true. The triggers of migration t04 send a client id on
`identity_changed` when anything the token endpoint relies on commits (a client, its secrets,
its scope grants, its application's status). Each process listens on a connection of its own
and forgets that client. Rate-limit blocks are shared on `identity_blocked` the same way.

The memory is trusted only while the listening connection is known to be healthy. Every
HEARTBEAT seconds a query on it proves that each notification committed before the query was
sent has been handled. The memory is then used for at most FRESH_FOR seconds after that query
was sent. So a revoked secret, a removed scope or an archived application stops working in
every process within a second, even when a listener dies without a word. (Notifications
normally arrive within milliseconds; the heartbeat only bounds the worst case.) Without a
healthy listener each request reads the database, as if there were no memory.

A record read inside a transaction is never kept, because it may never commit. Inside a
transaction the memory is not read either, because the transaction may see its own changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import asyncpg

from app.piccolo_conf import DB

log = logging.getLogger(__name__)

CHANGED = "identity_changed"
BLOCKED = "identity_blocked"
HEARTBEAT = 0.2
FRESH_FOR = 1.0
MOST_CLIENTS = 10_000
RECONNECT_LONGEST = 5.0
# A heartbeat this late means the connection is gone: reconnect.
LISTENER_TIMEOUT = 5.0

Record = TypeVar("Record")


class ClientCache(Generic[Record]):
    """Records by client id, and rate-limit blocks by throttle key, for one process."""

    def __init__(
        self, load: Callable[[str], Awaitable[Record | None]], name: str = "portal"
    ) -> None:
        self._load = load
        self._name = name
        self._records: dict[str, Record] = {}
        self._blocks: dict[str, float] = {}
        self._generation = 0
        self._fresh_until = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self._fresh_until and not DB.transaction_exists()

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
        asked = time.monotonic()
        while self._fresh_until - FRESH_FOR <= asked:
            if time.monotonic() > asked + LISTENER_TIMEOUT:
                raise TimeoutError("the identity listener is not connected")
            await asyncio.sleep(HEARTBEAT / 4)

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
        self._task = asyncio.create_task(self._listen(url), name="identity-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._fresh_until = 0.0

    async def _listen(self, url: str) -> None:
        wait = 0.2
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    url, server_settings={"application_name": f"{self._name} listener"}
                )
                await connection.add_listener(CHANGED, self._on_changed)
                await connection.add_listener(BLOCKED, self._on_blocked)
                # Whatever changed while nobody listened is unknown: start from nothing.
                self.forget("*")
                await self._load_blocks(connection)
                wait = 0.2
                while True:
                    sent = time.monotonic()
                    await connection.fetchval("SELECT 1", timeout=LISTENER_TIMEOUT)
                    self._fresh_until = sent + FRESH_FOR
                    await asyncio.sleep(HEARTBEAT)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("identity listener lost (%s); reading clients from the database", error)
            finally:
                self._fresh_until = 0.0
                if connection is not None:
                    connection.terminate()
            await asyncio.sleep(wait)
            wait = min(wait * 2, RECONNECT_LONGEST)

    async def _load_blocks(self, connection: asyncpg.Connection) -> None:
        rows = await connection.fetch(
            "SELECT key, extract(epoch FROM blocked_until - now())::float AS seconds"
            " FROM throttle WHERE key LIKE 'token:%' AND blocked_until > now()"
        )
        self._blocks = {row["key"]: time.monotonic() + row["seconds"] for row in rows}

    def _on_changed(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.forget(payload)

    def _on_blocked(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        key, _, seconds = payload.rpartition(" ")
        with contextlib.suppress(ValueError):
            self.block(key, float(seconds))
