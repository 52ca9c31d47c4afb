"""Rate limits that hold across app instances: counters in PostgreSQL.

A key (an account's e-mail address, a client address) may fail (or ask) `free` times within
`window`; after that every further one blocks it for a time that doubles up to `longest`. While
blocked, attempts are refused without being checked, and do not count, so an attacker
cannot keep a real user locked out for longer than `longest` at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from piccolo.columns import Integer, Text, Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from app.piccolo_conf import DB


class Throttle(Table, tablename="throttle"):
    """Failed attempts per key (an account, a client address) within a window."""

    key = Text(primary_key=True)
    failures = Integer(default=0)
    window_started_at = Timestamptz(default=TimestamptzNow())
    blocked_until = Timestamptz(null=True, default=None)


@dataclass(frozen=True)
class Policy:
    name: str
    free: int
    window: dt.timedelta
    first_block: dt.timedelta
    longest: dt.timedelta

    def block_for(self, failures: int) -> dt.timedelta:
        if failures <= self.free:
            return dt.timedelta(0)
        doubled: dt.timedelta = self.first_block * 2 ** min(failures - self.free - 1, 20)
        return min(doubled, self.longest)


SIGN_IN_ACCOUNT = Policy(
    "sign-in:account",
    free=5,
    window=dt.timedelta(minutes=15),
    first_block=dt.timedelta(seconds=30),
    longest=dt.timedelta(minutes=5),
)
SIGN_IN_ADDRESS = Policy(
    "sign-in:address",
    free=30,
    window=dt.timedelta(minutes=15),
    first_block=dt.timedelta(minutes=15),
    longest=dt.timedelta(minutes=15),
)
# Registering and asking for links sends mail: one client address may ask 20 times an hour,
MAIL_REQUESTS_ADDRESS = Policy(
    "mail:address",
    free=20,
    window=dt.timedelta(hours=1),
    first_block=dt.timedelta(minutes=10),
    longest=dt.timedelta(hours=1),
)
# and one mailbox receives at most 5 such mails an hour, whoever asks (no inbox flooding).
MAIL_REQUESTS_RECIPIENT = Policy(
    "mail:recipient",
    free=5,
    window=dt.timedelta(hours=1),
    first_block=dt.timedelta(hours=1),
    longest=dt.timedelta(hours=1),
)


@dataclass(frozen=True)
class Blocked(Exception):
    """Refused by a rate limit; `seconds` until the next attempt is allowed."""

    seconds: int


# A subject longer than this (a forged address, a pasted novel as a user name) is kept as its
# SHA-256, so that no key passes the index's row limit and every key has the same cost.
LONGEST_SUBJECT = 200


def key(policy: Policy, subject: str) -> str:
    """The counter's key: the policy's name and the subject."""
    if len(subject) > LONGEST_SUBJECT:
        subject = "sha256:" + hashlib.sha256(subject.encode("utf-8", "replace")).hexdigest()
    return f"{policy.name}:{subject}"


async def seconds_blocked(policy: Policy, subject: str) -> int:
    """How many seconds the subject must still wait; 0 when it may try."""
    rows = await Throttle.raw(
        "SELECT extract(epoch FROM blocked_until - now()) AS wait FROM throttle"
        " WHERE key = {} AND blocked_until > now()",
        key(policy, subject),
    )
    return math.ceil(rows[0]["wait"]) if rows else 0


async def record(policy: Policy, subject: str) -> int:
    """Count an attempt the policy limits; returns the seconds it is now blocked for (often 0)."""
    rows = await Throttle.raw(
        """
        INSERT INTO throttle AS t (key, failures, window_started_at) VALUES ({}, 1, now())
        ON CONFLICT (key) DO UPDATE SET
            failures = CASE WHEN t.window_started_at < now() - {}::interval
                            THEN 1 ELSE t.failures + 1 END,
            window_started_at = CASE WHEN t.window_started_at < now() - {}::interval
                                     THEN now() ELSE t.window_started_at END
        RETURNING failures
        """,
        key(policy, subject),
        policy.window,
        policy.window,
    )
    block = policy.block_for(rows[0]["failures"])
    if block:
        await Throttle.raw(
            "UPDATE throttle SET blocked_until = now() + {}::interval WHERE key = {}",
            block,
            key(policy, subject),
        )
    return math.ceil(block.total_seconds())


async def claim(*limits: tuple[Policy, str]) -> None:
    """Count this attempt against each counter before it is checked; raise Blocked when any
    counter is blocked or this attempt is one more than it allows.

    Each counter is claimed in one statement that counts and answers at once, so parallel
    attempts are counted one after another and never more than `free` of them are checked in
    a window. An attempt that turns out right is given back with `release`."""
    wait = 0
    for policy, subject in limits:
        wait = max(wait, await _claim_one(policy, subject))
    if wait:
        raise Blocked(wait)


async def _claim_one(policy: Policy, subject: str) -> int:
    counter = key(policy, subject)
    async with DB.transaction() as transaction:
        # The row is locked from here, so parallel attempts are counted one after another.
        before = await transaction.connection.fetchval(
            "SELECT blocked_until IS NOT NULL FROM throttle WHERE key = $1 FOR UPDATE", counter
        )
        row = await transaction.connection.fetchrow(
            """
            INSERT INTO throttle AS t (key, failures, window_started_at) VALUES ($1, 1, now())
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN t.blocked_until > now() THEN t.failures
                                WHEN t.window_started_at < now() - $2::interval THEN 1
                                ELSE t.failures + 1 END,
                window_started_at = CASE
                    WHEN t.blocked_until > now() THEN t.window_started_at
                    WHEN t.window_started_at < now() - $2::interval THEN now()
                    ELSE t.window_started_at END,
                blocked_until = CASE WHEN t.blocked_until > now() THEN t.blocked_until END
            RETURNING failures, extract(epoch FROM blocked_until - now())::float AS blocked_for
            """,
            counter,
            policy.window,
        )
        blocked_for: float | None = row["blocked_for"]
        if blocked_for is not None and blocked_for > 0:
            return math.ceil(blocked_for)  # refused while blocked, and not counted
        if before:
            # A block has just ended: this one attempt is let through (and the block
            # cleared); if it fails too, the next is blocked for twice as long.
            return 0
        block = policy.block_for(row["failures"])
        if block:
            await transaction.connection.execute(
                "UPDATE throttle SET blocked_until = now() + $1::interval WHERE key = $2",
                block,
                counter,
            )
    return math.ceil(block.total_seconds())


async def release(*limits: tuple[Policy, str]) -> None:
    """The attempt claimed on these counters was right: it does not count as a failure."""
    await Throttle.raw(
        "UPDATE throttle SET failures = greatest(failures - 1, 0) WHERE key = ANY({})",
        [key(policy, subject) for policy, subject in limits],
    )


async def clear(policy: Policy, subject: str) -> None:
    await Throttle.delete().where(Throttle.key == key(policy, subject))


async def purge_stale() -> None:
    """Forget counters whose window and block have both passed (run by the worker)."""
    await Throttle.raw(
        "DELETE FROM throttle WHERE window_started_at < now() - interval '1 day'"
        " AND (blocked_until IS NULL OR blocked_until < now())"
    )


# Guessing invitation codes: a few wrong codes per account, then a growing wait.
INVITATION_ACCOUNT = Policy(
    "invitation:account",
    free=5,
    window=dt.timedelta(hours=1),
    first_block=dt.timedelta(minutes=1),
    longest=dt.timedelta(minutes=30),
)


# Guessing the secret of an existing client while linking it: as for invitation codes.
CLIENT_LINK_ACCOUNT = Policy(
    "client-link:account",
    free=5,
    window=dt.timedelta(hours=1),
    first_block=dt.timedelta(minutes=1),
    longest=dt.timedelta(minutes=30),
)
