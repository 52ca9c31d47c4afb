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

A real deployment has tens of thousands of clients (often one per school per application),
each asking for a token about once an hour, many of them at the top of the hour. So each time
the listener connects, the memory is filled with every client in one query (up to `size`), and
a client seen since is kept too; when more than `size` are known, the least recently used one
is forgotten. A client that was changed while the query ran is left out: it is read again on
its next request.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

import asyncpg

from app.listener import Listener
from app.piccolo_conf import DB

CHANGED = "identity_changed"
BLOCKED = "identity_blocked"

log = logging.getLogger(__name__)
Record = TypeVar("Record")
# Every client the listening connection can read, as (client id, record) pairs, at most `size`.
Preload = Callable[[asyncpg.Connection, int], Awaitable[Iterable[tuple[str, Record]]]]


class ClientCache(Generic[Record]):
    """Records by client id, and rate-limit blocks by throttle key, for one process."""

    def __init__(
        self,
        load: Callable[[str], Awaitable[Record | None]],
        size: int,
        preload: Preload[Record] | None = None,
    ) -> None:
        self._load = load
        self._preload = preload
        self.size = size
        self._records: OrderedDict[str, Record] = OrderedDict()
        # While the memory is being filled: the client ids changed meanwhile.
        self._changed_while_filling: set[str] | None = None
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
                self._records.move_to_end(client_id)
                return record
        generation = self._generation
        record = await self._load(client_id)
        # Kept only if nothing changed while it was read, and the listener still hears.
        if record is not None and generation == self._generation and self.fresh:
            self._keep(client_id, record)
        return record

    def __len__(self) -> int:
        return len(self._records)

    def _keep(self, client_id: str, record: Record) -> None:
        self._records[client_id] = record
        self._records.move_to_end(client_id)
        while len(self._records) > self.size:
            self._records.popitem(last=False)

    def forget(self, client_id: str) -> None:
        self._generation += 1
        if self._changed_while_filling is not None:
            self._changed_while_filling.add(client_id)
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
        if self._preload is not None:
            await self._fill(self._preload, connection)

    async def _fill(self, preload: Preload[Record], connection: asyncpg.Connection) -> None:
        """Every client, read after LISTEN: a change committed after the query's snapshot is
        notified, and its client is left out (the listener is not yet trusted meanwhile, so
        no request reads or writes the memory)."""
        started = time.monotonic()
        self._changed_while_filling = set()
        try:
            loaded = list(await preload(connection, self.size))
        finally:
            changed, self._changed_while_filling = self._changed_while_filling, None
        if "*" in changed:
            return
        for client_id, record in loaded:
            if client_id not in changed:
                self._keep(client_id, record)
        del loaded
        # Tens of thousands of records live as long as the process, like the objects frozen
        # at start-up (app.serving): the garbage collector need not walk them on every full
        # collection. They hold no cycles, so a forgotten record is still freed at once.
        gc.collect()
        gc.freeze()
        log.info(
            "%d clients in memory, read in %.0f ms",
            len(self._records),
            (time.monotonic() - started) * 1000,
        )

    def _blocked_elsewhere(self, payload: str) -> None:
        key, _, seconds = payload.rpartition(" ")
        with contextlib.suppress(ValueError):
            self.block(key, float(seconds))
