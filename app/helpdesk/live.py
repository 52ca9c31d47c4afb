"""The helpdesk's live queue: every open queue page hears of a change within a second.

Submitting, resubmitting, approving or rejecting an application sends a NOTIFY on
`application_queue` when it commits, from whichever app process did it. Each process listens
(app.listener) and wakes the server-sent-event streams of the queue pages it serves, which
then fetch the queue again (htmx's SSE extension). After a lost connection the listener tells
every stream to refetch, since notifications may have been missed; the browser's EventSource
reconnects by itself when a stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg

from app.applications.service import QUEUE_CHANNEL
from app.listener import Listener


class QueueFeed:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[None]] = set()
        self.listener = Listener(
            "queue", {QUEUE_CHANNEL: self._changed}, on_connect=self._connected
        )

    def start(self, url: str) -> None:
        self.listener.start(url)

    async def stop(self) -> None:
        await self.listener.stop()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[None]]:
        """A queue that gets an item whenever the approval queue may have changed."""
        changes: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._subscribers.add(changes)
        try:
            yield changes
        finally:
            self._subscribers.discard(changes)

    def _changed(self, _payload: str = "") -> None:
        for changes in self._subscribers:
            if changes.empty():  # one pending refetch covers any number of changes
                changes.put_nowait(None)

    async def _connected(self, _connection: asyncpg.Connection) -> None:
        self._changed()
