"""Work that would hold the event loop runs in small pools of worker threads.

The token endpoint shares its processes with the pages, so a handler never spends more than a
few milliseconds of CPU on the loop. Hashing a password and decoding an image run here instead.
Each pool is bounded: twelve parallel uploads wait their turn rather than take every core, and
one kind of work cannot starve another (uploads never delay a sign-in). The threads give up the
interpreter lock while the C code of argon2 and Pillow runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

T = TypeVar("T")


@dataclass
class Pool:
    name: str
    size: int
    _limiter: CapacityLimiter | None = field(default=None, repr=False)

    def limiter(self) -> CapacityLimiter:
        """Made on first use, inside the running event loop."""
        if self._limiter is None:
            self._limiter = CapacityLimiter(self.size)
        return self._limiter

    async def run(self, function: Callable[..., T], *arguments: object) -> T:
        """`function(*arguments)` in one of this pool's worker threads."""
        return await anyio.to_thread.run_sync(function, *arguments, limiter=self.limiter())


# argon2id uses several cores per hash by itself; two at a time per process is plenty.
PASSWORDS = Pool("passwords", 2)
# Decoding a 4096 × 4096 logo takes a quarter of a second: one at a time per process.
IMAGES = Pool("images", 1)
