"""PostgreSQL LISTEN on a connection of the process's own, with a heartbeat and reconnection.

Several app processes learn of each other's changes this way (the token endpoint's client
memory, the helpdesk's live queue). The heartbeat is a query on the listening connection: when
it is answered, every notification committed before it was sent has been handled, so
`heard_until` tells how long what the process knows may be trusted. When the connection is
lost, `on_connect` runs again after reconnecting, because notifications sent meanwhile are
gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

HEARTBEAT = 0.2
# A heartbeat answered proves what was heard up to when it was sent; trust it this long.
FRESH_FOR = 1.0
# A heartbeat this late means the connection is gone: reconnect.
TIMEOUT = 5.0
RECONNECT_LONGEST = 5.0


class Listener:
    def __init__(
        self,
        name: str,
        channels: dict[str, Callable[[str], None]],
        on_connect: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._channels = channels
        self._on_connect = on_connect
        self._heard_until = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def heard(self) -> bool:
        """True while every notification committed up to a second ago has been handled."""
        return time.monotonic() < self._heard_until

    def start(self, url: str) -> None:
        self._task = asyncio.create_task(self._run(url), name=f"{self.name}-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._heard_until = 0.0

    async def caught_up(self) -> None:
        """Return once every notification committed before the call has been handled."""
        asked = time.monotonic()
        while self._heard_until - FRESH_FOR <= asked:
            if time.monotonic() > asked + TIMEOUT:
                raise TimeoutError(f"the {self.name} listener is not connected")
            await asyncio.sleep(HEARTBEAT / 4)

    async def _run(self, url: str) -> None:
        wait = 0.2
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    url, server_settings={"application_name": f"portal {self.name} listener"}
                )
                for channel, handle in self._channels.items():
                    await connection.add_listener(channel, self._callback(handle))
                if self._on_connect is not None:
                    await self._on_connect(connection)
                wait = 0.2
                while True:
                    sent = time.monotonic()
                    await connection.fetchval("SELECT 1", timeout=TIMEOUT)
                    self._heard_until = sent + FRESH_FOR
                    await asyncio.sleep(HEARTBEAT)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("%s listener lost (%s); reconnecting", self.name, error)
            finally:
                self._heard_until = 0.0
                if connection is not None:
                    connection.terminate()
            await asyncio.sleep(wait)
            wait = min(wait * 2, RECONNECT_LONGEST)

    @staticmethod
    def _callback(handle: Callable[[str], None]) -> Callable[[Any, int, str, str], None]:
        def callback(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            handle(payload)

        return callback
