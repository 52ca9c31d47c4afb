"""Token traffic a partner can read: tokens per day, API and school, and why requests failed.

The token endpoint must not wait for this, so each process notes what happened in memory: a
token costs one counter increment, keyed by the client and the scope string it already has.
Failures are written within a second; counters every ten (`token_day`, added to, one row per
client and scope set; tokens issued in the seconds before midnight may count for the next
day). The newest 50 failures of each client are kept (`token_failure`). A failure's cause is
worked out then, beside the requests: the presented secret is held only as its SHA-256, in
memory, until it has been compared with the client's secrets (which one was it: expired,
revoked, or none); nothing presented is ever written. The answer on the wire is unchanged
(`invalid_client`, `invalid_scope`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from app import db
from app.config import Settings
from app.identity.scopes import parse_scope
from app.piccolo_conf import DB

log = logging.getLogger(__name__)
WRITE_EVERY = 1.0  # failures: on the page within about a second
COUNT_EVERY = 10.0  # counters: fewer, larger writes (50,000 clients make one row each)
ROWS_PER_WRITE = 2_000
KEPT_FAILURES = 50
DAYS_SHOWN = 30

# Causes, as stored; the page says them in the reader's language.
WRONG_SECRET = "wrong_secret"  # noqa: S105 - a cause's name, not a secret
EXPIRED_SECRET = "expired_secret"  # noqa: S105
REVOKED_SECRET = "revoked_secret"  # noqa: S105
NOT_APPROVED = "not_approved"
ARCHIVED = "archived"
DISABLED = "disabled"
PARTNER_INACTIVE = "partner_inactive"
BLOCKED = "blocked"
SCOPE_NOT_GRANTED = "scope_not_granted"


@dataclass
class Failure:
    client: int
    at: dt.datetime
    cause: str
    address: str
    detail: dict[str, Any] = field(default_factory=dict)
    # Only until the cause is known: the presented secret's hash, never written.
    presented_hash: str | None = None


class Diagnostics:
    """One per process: notes in memory, writes every second."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Per client and the scope string of the token, as issued.
        self._issued: dict[tuple[int, str], int] = {}
        self.enabled = settings.identity.token_diagnostics
        self._failure_noted = asyncio.Event()
        self._failures: list[Failure] = []
        self._writer: asyncio.Task[None] | None = None

    def issued(self, client: int, scope: str) -> None:
        if self.enabled:
            key = (client, scope)
            self._issued[key] = self._issued.get(key, 0) + 1
            if self._writer is None:
                self._start()

    def failed(self, failure: Failure) -> None:
        if self.enabled:
            self._failures.append(failure)
            self._failure_noted.set()
            if self._writer is None:
                self._start()

    def _start(self) -> None:
        # A context of its own: not the request's (nor a test's open transaction).
        self._writer = asyncio.create_task(
            self._keep_writing(), name="token-diagnostics", context=contextvars.Context()
        )

    async def _keep_writing(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._failure_noted.wait(), timeout=COUNT_EVERY)
                await asyncio.sleep(WRITE_EVERY)  # more may follow: one write for them
            self._failure_noted.clear()
            await self.write()

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.write(), timeout=5)

    async def write(self) -> None:
        issued, self._issued = self._issued, {}
        failures, self._failures = self._failures, []
        try:
            keys = list(issued)
            for start in range(0, len(keys), ROWS_PER_WRITE):
                # In slices, so that no single statement holds the loop or the server long.
                chunk = keys[start : start + ROWS_PER_WRITE]
                await db.fetch(
                    DB,
                    """
                    INSERT INTO token_day AS t (client, day, scopes, tokens)
                    SELECT u.c, current_date, u.s, u.n
                    FROM unnest($1::int[], $2::text[], $3::int[]) AS u(c, s, n)
                    JOIN client ON client.id = u.c  -- a client deleted meanwhile is left out
                    ON CONFLICT (client, day, scopes)
                    DO UPDATE SET tokens = t.tokens + excluded.tokens
                    """,
                    [key[0] for key in chunk],
                    [key[1] for key in chunk],
                    [issued[key] for key in chunk],
                )
            if failures:
                await self._write_failures(failures)
        except Exception:  # bookkeeping only: a failed write must not end up unobserved
            log.warning("could not record token traffic", exc_info=True)

    async def _write_failures(self, failures: list[Failure]) -> None:
        with_secret = sorted({f.client for f in failures if f.presented_hash is not None})
        known: dict[int, list[Mapping[str, Any]]] = {}
        if with_secret:
            rows = await db.fetch(
                DB,
                "SELECT id, client, value_hash, hint, label, expires_at, revoked_at"
                " FROM client_secret WHERE client = ANY($1)",
                with_secret,
            )
            for row in rows:
                known.setdefault(row["client"], []).append(dict(row))
        for failure in failures:
            if failure.presented_hash is not None:
                _explain_secret(failure, known.get(failure.client, []))
                failure.presented_hash = None
        await db.fetch(
            DB,
            """
            INSERT INTO token_failure (client, at, cause, address, detail)
            SELECT u.* FROM unnest($1::int[], $2::timestamptz[], $3::text[], $4::text[],
                                   $5::jsonb[]) AS u(client, at, cause, address, detail)
            JOIN client ON client.id = u.client
            """,
            [f.client for f in failures],
            [f.at for f in failures],
            [f.cause for f in failures],
            [f.address for f in failures],
            [msgspec.json.encode(f.detail).decode() for f in failures],
        )
        await db.fetch(
            DB,
            """
            DELETE FROM token_failure f USING (
                SELECT id, row_number() OVER (PARTITION BY client ORDER BY at DESC, id DESC) AS n
                FROM token_failure WHERE client = ANY($1)) r
            WHERE f.id = r.id AND r.n > $2
            """,
            sorted({f.client for f in failures}),
            KEPT_FAILURES,
        )


def _explain_secret(failure: Failure, secrets: list[Mapping[str, Any]]) -> None:
    """Which of the client's secrets was presented, if any, and why it did not work."""
    match = next((s for s in secrets if s["value_hash"] == failure.presented_hash), None)
    if match is None:
        failure.cause = WRONG_SECRET
        return
    failure.detail["secret"] = {"hint": match["hint"], "label": match["label"], "id": match["id"]}
    if match["revoked_at"] is not None:
        failure.cause = REVOKED_SECRET
        failure.detail["since"] = match["revoked_at"].isoformat()
    elif match["expires_at"] is not None:
        failure.cause = EXPIRED_SECRET
        failure.detail["since"] = match["expires_at"].isoformat()
    else:
        failure.cause = WRONG_SECRET  # valid now: it was changed in between


class Day(msgspec.Struct, frozen=True):
    day: dt.date
    tokens: int


class ScopeUse(msgspec.Struct, frozen=True):
    api: str
    institution_number: str
    tokens: int


class Missing(msgspec.Struct, frozen=True):
    api: str
    school: str
    withdrawn_at: str | None  # ISO 8601, as the JSON has it


class FailedRequest(msgspec.Struct, frozen=True):
    at: dt.datetime
    cause: str
    address: str
    detail: dict[str, Any]
    missing: list[Missing]


class Traffic(msgspec.Struct, frozen=True):
    """What the application page shows: 30 days of tokens, and the last failures."""

    days: list[Day]
    per_scope: list[ScopeUse]
    failures: list[FailedRequest]
    total: int


async def traffic(client_pk: int, settings: Settings) -> Traffic:
    """The client's token traffic."""
    days = await db.fetch(
        DB,
        "SELECT day, sum(tokens) AS tokens FROM token_day WHERE client = $1"
        " AND day > current_date - $2::int GROUP BY day ORDER BY day DESC",
        client_pk,
        DAYS_SHOWN,
    )
    scope_rows = await db.fetch(
        DB,
        "SELECT scope, sum(tokens) AS tokens FROM token_day,"
        " unnest(string_to_array(scopes, ' ')) AS scope"
        " WHERE client = $1 AND day > current_date - $2::int GROUP BY scope",
        client_pk,
        DAYS_SHOWN,
    )
    per_scope = sorted(
        (
            {"api": parsed[0], "institution_number": parsed[1], "tokens": row["tokens"]}
            for row in scope_rows
            if (parsed := parse_scope(settings, row["scope"])) is not None
        ),
        key=lambda row: (row["api"], row["institution_number"]),
    )
    failures = await db.fetch(
        DB,
        """
        SELECT f.at, f.cause, f.address, f.detail, (
            SELECT jsonb_agg(jsonb_build_object('api', m.api, 'school', m.school,
                'withdrawn_at', (SELECT max(e.at) FROM audit_event e
                                 WHERE e.application = c.application AND e.action = 'removed'
                                   AND e.institution_number = m.school
                                   AND e.detail->>'api' = m.api)))
            FROM jsonb_to_recordset(coalesce(f.detail->'missing', '[]')) AS m(api text, school text)
        ) AS missing
        FROM token_failure f JOIN client c ON c.id = f.client
        WHERE f.client = $1 ORDER BY f.at DESC, f.id DESC LIMIT $2
        """,
        client_pk,
        KEPT_FAILURES,
    )
    failed = [
        {
            **dict(row),
            "detail": msgspec.json.decode(row["detail"]) if row["detail"] else {},
            "missing": msgspec.json.decode(row["missing"]) if row["missing"] else [],
        }
        for row in failures
    ]
    return msgspec.convert(
        {
            "days": [dict(row) for row in days],
            "per_scope": per_scope,
            "failures": failed,
            "total": sum(row["tokens"] for row in days),
        },
        Traffic,
    )
