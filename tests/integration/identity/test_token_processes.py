"""`portal serve --workers 2`: a revoked secret, a removed scope or an archived application
stops working in every worker process within a second, although each one remembers clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.identity.tables import ClientSecret, ScopeGrant
from tests.factories import archive, make_client
from tests.serving import free_port, portal_serve

pytestmark = pytest.mark.anyio
OTHER_SCHOOL = "api_informat_sas_leerlingen.leerlingen.654321"
# invalid_client; after 20 of those for one client id the rate limit answers 429 instead.
REFUSED = {400, 429}


@pytest.fixture(scope="module")
def two_workers(database_url: str) -> Iterator[str]:
    env = {"DATABASE_URL": database_url, "PORTAL_MAIL_WORKER_IN_PROCESS": "false"}
    with portal_serve(free_port(), "--workers", "2", "--no-access-log", env=env) as base:
        yield base


@pytest.fixture
async def http(two_workers: str, committed: None) -> AsyncIterator[httpx.AsyncClient]:
    # A new connection for every request, so that both worker processes answer.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=two_workers, limits=limits, timeout=10) as client:
        yield client


async def statuses(http: httpx.AsyncClient, client: dict[str, Any], scope: str = "") -> set[int]:
    """The answers to 40 token requests, 10 at a time."""
    data = {
        "grant_type": "client_credentials",
        "client_id": str(client["client_id"]),
        "client_secret": str(client["secret"]),
    }
    if scope:
        data["scope"] = scope
    seen: set[int] = set()
    for _ in range(4):
        answers = await asyncio.gather(*(http.post("/connect/token", data=data) for _ in range(10)))
        seen |= {answer.status_code for answer in answers}
    return seen


async def one_second_later(
    http: httpx.AsyncClient, client: dict[str, Any], scope: str = ""
) -> set[int]:
    await asyncio.sleep(1.0)
    return await statuses(http, client, scope)


async def test_every_worker_stops_within_a_second(http: httpx.AsyncClient) -> None:
    client = await make_client(
        scopes=[("leerlingen", "123456"), ("leerlingen", "654321")],
        application_status="goedgekeurd",
    )
    assert await statuses(http, client, OTHER_SCHOOL) == {200}

    await ScopeGrant.raw(
        "DELETE FROM scope_grant WHERE client = {} AND institution_number = '654321'",
        client["id"],
    )
    assert await one_second_later(http, client, OTHER_SCHOOL) == {400}
    assert await statuses(http, client) == {200}

    await archive(client["application"])  # type: ignore[arg-type]
    assert await one_second_later(http, client) <= REFUSED


async def test_a_revoked_secret_stops_in_every_worker_within_a_second(
    http: httpx.AsyncClient,
) -> None:
    client = await make_client()
    assert await statuses(http, client) == {200}
    await ClientSecret.raw(
        "UPDATE client_secret SET revoked_at = now() WHERE id = {}", client["secret_id"]
    )
    assert await one_second_later(http, client) <= REFUSED
