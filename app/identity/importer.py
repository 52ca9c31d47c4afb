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
import json
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.identity.service import parse_scope
from app.identity.tables import Client, ClientSecret, ScopeGrant
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
    data = json.loads(text)
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


async def import_clients(
    specs: list[ClientSpec], settings: Settings, granted_by: str = "import"
) -> ImportReport:
    report = ImportReport()
    async with DB.transaction():
        for spec in specs:
            await _import_one(spec, settings, granted_by, report)
    return report


async def _import_one(
    spec: ClientSpec, settings: Settings, granted_by: str, report: ImportReport
) -> None:
    if "client_credentials" not in spec.grant_types:
        report.skipped.append(f"{spec.client_id}: no client_credentials grant")
        return
    created = await Client.raw(
        "INSERT INTO client (client_id) VALUES ({}) ON CONFLICT (client_id) DO NOTHING"
        " RETURNING id",
        spec.client_id,
    )
    if created:
        report.clients_created += 1
        client_pk = created[0]["id"]
    else:
        report.clients_existing += 1
        existing = await Client.select(Client.id).where(Client.client_id == spec.client_id).first()
        client_pk = _required(existing)["id"]
    for value_hash, expires_at in spec.secrets:
        known = await ClientSecret.exists().where(
            (ClientSecret.client == client_pk) & (ClientSecret.value_hash == value_hash)
        )
        if not known:
            await ClientSecret.insert(
                ClientSecret(
                    client=client_pk,
                    value_hash=value_hash,
                    expires_at=expires_at,
                    description="imported",
                )
            )
            report.secrets_added += 1
    for scope in spec.scopes:
        parsed = parse_scope(settings, scope)
        if parsed is None:
            report.skipped.append(f"{spec.client_id}: scope {scope} names no known API")
            continue
        added = await ScopeGrant.raw(
            "INSERT INTO scope_grant (client, api, institution_number, granted_by)"
            " VALUES ({}, {}, {}, {}) ON CONFLICT DO NOTHING RETURNING id",
            client_pk,
            parsed[0],
            parsed[1],
            granted_by,
        )
        report.scopes_added += len(added)


def _required(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        raise LookupError("client vanished during import")
    return row
