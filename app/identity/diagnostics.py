"""Token traffic a partner can read: tokens per day, API and school, and why requests failed.

The token endpoint must not wait for this, so each process notes what happened in memory and
writes it once a second, in two statements: the day's counters (`token_day`, added to) and the
failures (`token_failure`, the newest 50 of each client kept). A failure's cause is worked out
then, beside the requests: the presented secret is held only as its SHA-256, in memory, until
it has been compared with the client's secrets (which one was it: expired, revoked, or none);
nothing presented is ever written. The answer on the wire is unchanged (`invalid_client`,
`invalid_scope`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from app import db
from app.config import Settings
from app.identity.scopes import parse_scope
from app.piccolo_conf import DB

log = logging.getLogger(__name__)
WRITE_EVERY = 1.0
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
        self._issued: Counter[tuple[int, dt.date, str, str]] = Counter()
        self._failures: list[Failure] = []
        self._writer: asyncio.Task[None] | None = None

    def issued(self, client: int, scopes: list[str]) -> None:
        today = dt.datetime.now(dt.UTC).date()
        for scope in scopes:
            parsed = parse_scope(self.settings, scope)
            if parsed is not None:
                self._issued[(client, today, parsed[0], parsed[1])] += 1
        self._soon()

    def failed(self, failure: Failure) -> None:
        self._failures.append(failure)
        self._soon()

    def _soon(self) -> None:
        if self._writer is None or self._writer.done():
            # A context of its own: not the request's (nor a test's open transaction).
            self._writer = asyncio.create_task(
                self._write_after(WRITE_EVERY),
                name="token-diagnostics",
                context=contextvars.Context(),
            )

    async def _write_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.write()

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.write(), timeout=5)

    async def write(self) -> None:
        issued, self._issued = self._issued, Counter()
        failures, self._failures = self._failures, []
        try:
            if issued:
                keys = list(issued)
                await db.fetch(
                    DB,
                    """
                    INSERT INTO token_day AS t (client, day, api, institution_number, tokens)
                    SELECT * FROM unnest($1::int[], $2::date[], $3::text[], $4::text[], $5::int[])
                    ON CONFLICT (client, day, api, institution_number)
                    DO UPDATE SET tokens = t.tokens + excluded.tokens
                    """,
                    [key[0] for key in keys],
                    [key[1] for key in keys],
                    [key[2] for key in keys],
                    [key[3] for key in keys],
                    [issued[key] for key in keys],
                )
            if failures:
                await self._write_failures(failures)
        except Exception:  # bookkeeping only: a failed write must not end up unobserved
            log.warning("could not record token traffic", exc_info=True)

    async def _write_failures(self, failures: list[Failure]) -> None:
        with_secret = sorted({f.client for f in failures if f.presented_hash is not None})
        known: dict[int, list[dict[str, Any]]] = {}
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
            SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::text[], $4::text[],
                                 $5::jsonb[])
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


def _explain_secret(failure: Failure, secrets: list[dict[str, Any]]) -> None:
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


async def traffic(client_pk: int) -> dict[str, Any]:
    """What the application page shows: 30 days of tokens, and the last failures."""
    days = await db.fetch(
        DB,
        "SELECT day, sum(tokens) AS tokens FROM token_day WHERE client = $1"
        " AND day > current_date - $2::int GROUP BY day ORDER BY day DESC",
        client_pk,
        DAYS_SHOWN,
    )
    per_scope = await db.fetch(
        DB,
        "SELECT api, institution_number, sum(tokens) AS tokens FROM token_day"
        " WHERE client = $1 AND day > current_date - $2::int"
        " GROUP BY api, institution_number ORDER BY api, institution_number",
        client_pk,
        DAYS_SHOWN,
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
    return {
        "days": [dict(row) for row in days],
        "per_scope": [dict(row) for row in per_scope],
        "failures": [
            {
                **dict(row),
                "detail": msgspec.json.decode(row["detail"]) if row["detail"] else {},
                "missing": msgspec.json.decode(row["missing"]) if row["missing"] else [],
            }
            for row in failures
        ],
        "total": sum(row["tokens"] for row in days),
    }
