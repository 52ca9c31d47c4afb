"""`portal clients import` at a real deployment's scale: batches in one transaction, idempotent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.identity import importer
from app.identity.importer import ClientSpec, import_clients
from app.identity.service import load_client, secret_hash
from app.identity.tables import Client, ClientSecret, ScopeGrant
from tests.factories import make_client

pytestmark = pytest.mark.anyio


def spec(client_id: str, secret: str, *schools: str) -> ClientSpec:
    scopes = [f"api_informat_sas_leerlingen.leerlingen.{school}" for school in schools]
    return ClientSpec(client_id, [(secret_hash(secret), None)], scopes, ["client_credentials"])


async def test_batches_add_only_what_is_missing_and_report_each_batch(
    client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH", 2)
    present = await make_client(scopes=[("leerlingen", "111111")])
    specs = [spec(f"batch-{n}", f"geheim-{n}-0123456789", "111111", "222222") for n in range(4)] + [
        # An existing client: a second secret and a second school are added, nothing else.
        spec(str(present["client_id"]), "tweede-geheim-0123456789", "111111", "333333"),
        # A client named twice in one file is one client.
        spec("batch-0", "nog-een-geheim-0123456789", "444444"),
    ]
    batches: list[tuple[int, int]] = []
    report = await import_clients(specs, settings, progress=lambda *done: batches.append(done))
    assert batches == [(2, 5), (4, 5), (5, 5)]
    assert (report.clients_created, report.clients_existing) == (4, 1)
    assert (report.secrets_added, report.scopes_added) == (6, 10)
    first = await load_client("batch-0", settings)
    assert first is not None and len(first.secrets) == 2
    assert first.scopes == tuple(
        f"api_informat_sas_leerlingen.leerlingen.{school}"
        for school in ("111111", "222222", "444444")
    )
    existing = await load_client(str(present["client_id"]), settings)
    assert existing is not None and len(existing.secrets) == 2 and len(existing.scopes) == 2

    counts = [await table.count() for table in (Client, ClientSecret, ScopeGrant)]
    again = await import_clients(specs, settings)
    assert (again.clients_created, again.secrets_added, again.scopes_added) == (0, 0, 0)
    assert again.clients_existing == 5
    assert [await table.count() for table in (Client, ClientSecret, ScopeGrant)] == counts


async def test_an_import_that_fails_leaves_nothing_behind(committed: None, settings: Any) -> None:
    before = await Client.count()
    broken = [spec("heel-goed", "geheim-0123456789", "123456"), spec("x" * 300, "g", "123456")]
    with pytest.raises(Exception, match="too long"):
        await import_clients(broken, settings)
    assert await Client.count() == before


def test_identityserver_json_with_many_clients_is_read_whole() -> None:
    exported = json.dumps(
        {"Clients": [{"ClientId": f"c{n}", "ClientSecrets": [{"Value": "h"}]} for n in range(3)]}
    )
    assert [entry.client_id for entry in importer.read_json(exported)] == ["c0", "c1", "c2"]
