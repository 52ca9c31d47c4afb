"""Bringing today's clients along: IdentityServer's client JSON, or a CSV.

JSON: a list of objects with ClientId, ClientSecrets ([{"Type": "SharedSecret", "Value":
"<base64 SHA-256>", "Expiration": optional}]), AllowedGrantTypes and AllowedScopes.
CSV: client_id,secret_sha256,scopes (scopes separated by spaces; the hash in the same base64
form). Importing twice changes nothing the second time; the original secrets keep working.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from app.config import Settings
from app.identity.scopes import parse_scope
from app.piccolo_conf import DB


@dataclass
class ImportReport:
    clients_created: int = 0
    clients_existing: int = 0
    secrets_added: int = 0
    scopes_added: int = 0
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"clients created: {self.clients_created}",
            f"clients already present: {self.clients_existing}",
            f"secrets added: {self.secrets_added}",
            f"scopes added: {self.scopes_added}",
            *[f"skipped: {reason}" for reason in self.skipped],
        ]


@dataclass(frozen=True)
class ClientSpec:
    client_id: str
    secrets: list[tuple[str, dt.datetime | None]]
    scopes: list[str]
    grant_types: list[str]


def read_json(text: str) -> list[ClientSpec]:
    data = msgspec.json.decode(text)  # three times json's speed, for a file of 50,000 clients
    if isinstance(data, dict):
        data = data.get("Clients", data.get("clients", []))
    specs = []
    for entry in data:
        secrets = []
        for secret in entry.get("ClientSecrets", []):
            if secret.get("Type", "SharedSecret") != "SharedSecret":
                continue
            expiration = secret.get("Expiration")
            secrets.append((secret["Value"], _when(expiration) if expiration else None))
        specs.append(
            ClientSpec(
                entry["ClientId"],
                secrets,
                list(entry.get("AllowedScopes", [])),
                list(entry.get("AllowedGrantTypes", ["client_credentials"])),
            )
        )
    return specs


def read_csv(text: str) -> list[ClientSpec]:
    rows = csv.DictReader(io.StringIO(text))
    return [
        ClientSpec(
            row["client_id"].strip(),
            [(row["secret_sha256"].strip(), None)],
            row.get("scopes", "").split(),
            ["client_credentials"],
        )
        for row in rows
    ]


def _when(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def read_file(name: str, text: str) -> list[ClientSpec]:
    return read_csv(text) if name.lower().endswith(".csv") else read_json(text)


# Clients per round of statements: large enough that 50,000 clients take a few seconds, small
# enough that a progress line comes every fraction of a second.
BATCH = 10_000
# Any 64-bit number: imports take turns.
IMPORT_LOCK = 7_305_213_884_003


async def import_clients(
    specs: list[ClientSpec],
    settings: Settings,
    granted_by: str = "import",
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Create the clients that are new, add the secrets and scopes they lack: all in one
    transaction, a few statements per batch of clients (not one per row)."""
    report = ImportReport()
    wanted = _merged(specs, settings, report)
    async with DB.transaction() as transaction:
        await transaction.connection.execute("SELECT pg_advisory_xact_lock($1)", IMPORT_LOCK)
        # The pool plans every run afresh (app.db); for statements over arrays of thousands of
        # values that planning took a third of the import. Their one plan needs no values.
        await transaction.connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        for start in range(0, len(wanted), BATCH):
            await _import_batch(
                transaction.connection, wanted[start : start + BATCH], granted_by, report
            )
            if progress is not None:
                progress(min(start + BATCH, len(wanted)), len(wanted))
    return report


@dataclass
class _Wanted:
    client_id: str
    secrets: dict[str, dt.datetime | None] = field(default_factory=dict)
    grants: set[tuple[str, str]] = field(default_factory=set)


def _merged(specs: list[ClientSpec], settings: Settings, report: ImportReport) -> list[_Wanted]:
    """One entry per client id (a file may name one twice), with its parsed scopes."""
    wanted: dict[str, _Wanted] = {}
    for spec in specs:
        if "client_credentials" not in spec.grant_types:
            report.skipped.append(f"{spec.client_id}: no client_credentials grant")
            continue
        entry = wanted.setdefault(spec.client_id, _Wanted(spec.client_id))
        for value_hash, expires_at in spec.secrets:
            entry.secrets.setdefault(value_hash, expires_at)
        for scope in spec.scopes:
            parsed = parse_scope(settings, scope)
            if parsed is None:
                report.skipped.append(f"{spec.client_id}: scope {scope} names no known API")
            else:
                entry.grants.add(parsed)
    return list(wanted.values())


async def _import_batch(
    connection: Any, batch: list[_Wanted], granted_by: str, report: ImportReport
) -> None:
    client_ids = [entry.client_id for entry in batch]
    existing = {
        row["client_id"]: row["id"]
        for row in await connection.fetch(
            "SELECT c.id, c.client_id FROM unnest($1::text[]) AS n(client_id)"
            " JOIN client c ON c.client_id = n.client_id",
            client_ids,
        )
    }
    # No conflict clause: it would cost as much as the row itself, and no other import runs
    # meanwhile (IMPORT_LOCK); a client id the portal generates at that very moment is random.
    created = {
        row["client_id"]: row["id"]
        for row in await connection.fetch(
            "INSERT INTO client (client_id) SELECT unnest($1::text[]) RETURNING id, client_id",
            [client_id for client_id in client_ids if client_id not in existing],
        )
    }
    report.clients_created += len(created)
    report.clients_existing += len(existing)
    # A new client has no secrets or grants yet: its rows need no check for duplicates, which
    # is most of the cost of a conflict clause.
    for ids, check in ((created, False), (existing, True)):
        entries = [entry for entry in batch if entry.client_id in ids]
        secrets = [
            (ids[entry.client_id], value_hash, expires_at)
            for entry in entries
            for value_hash, expires_at in entry.secrets.items()
        ]
        grants = [
            (ids[entry.client_id], api, number) for entry in entries for api, number in entry.grants
        ]
        if secrets:
            report.secrets_added += await connection.fetchval(
                ADD_SECRETS if check else NEW_SECRETS, *_columns(secrets, 3)
            )
        if grants:
            report.scopes_added += await connection.fetchval(
                ADD_GRANTS if check else NEW_GRANTS, *_columns(grants, 3), granted_by
            )


NEW_SECRETS = """
WITH added AS (
    INSERT INTO client_secret (client, value_hash, expires_at, description)
    SELECT n.client, n.hash, n.expires_at, 'imported'
    FROM unnest($1::int[], $2::text[], $3::timestamptz[]) AS n(client, hash, expires_at)
    RETURNING 1)
SELECT count(*) FROM added
"""
ADD_SECRETS = NEW_SECRETS.replace(
    "AS n(client, hash, expires_at)",
    "AS n(client, hash, expires_at) WHERE NOT EXISTS"
    " (SELECT 1 FROM client_secret s WHERE s.client = n.client AND s.value_hash = n.hash)",
)
NEW_GRANTS = """
WITH added AS (
    INSERT INTO scope_grant (client, api, institution_number, granted_by)
    SELECT n.client, n.api, n.number, $4
    FROM unnest($1::int[], $2::text[], $3::text[]) AS n(client, api, number)
    RETURNING 1)
SELECT count(*) FROM added
"""
ADD_GRANTS = NEW_GRANTS.replace(
    "AS n(client, api, number)",
    "AS n(client, api, number) WHERE NOT EXISTS (SELECT 1 FROM scope_grant g WHERE"
    " g.client = n.client AND g.api = n.api AND g.institution_number = n.number)",
).replace("RETURNING 1", "ON CONFLICT DO NOTHING RETURNING 1")


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as columns, for unnest()."""
    return [[row[index] for row in rows] for index in range(width)]
