"""Each process remembers its clients; PostgreSQL's notifications keep every memory true.

These tests commit their data, so that the listening connections see it. A second
TokenService with its own listener plays another app process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from app.config import Settings
from app.identity.oauth import TokenError
from app.identity.service import ClientRecord, TokenService, secret_hash
from app.identity.tables import ClientSecret, ScopeGrant
from app.piccolo_conf import DB
from tests.conftest import INTROSPECTION_SECRET
from tests.factories import archive, make_client

pytestmark = pytest.mark.anyio
SCOPE = "api_informat_sas_leerlingen.leerlingen.123456"
ADDRESS = "192.0.2.10"


async def new_client(*services: TokenService, **options: Any) -> dict[str, Any]:
    """A committed client, once every process has heard of its creation."""
    client = await make_client(**options)
    for service in services:
        await service.clients.caught_up()
    return client


@pytest.fixture
async def other_process(settings: Settings, committed: None) -> AsyncIterator[TokenService]:
    service = TokenService(settings)
    service.start()
    await service.clients.caught_up()
    yield service
    await service.stop()


@pytest.fixture
async def this_process(app: Any, committed: None) -> TokenService:
    service: TokenService = app.state.tokens
    await service.clients.caught_up()
    return service


async def exchange(service: TokenService, client: dict[str, Any], scope: str | None = None) -> str:
    record = await service.authenticate(str(client["client_id"]), str(client["secret"]), ADDRESS)
    scopes = await service.granted_scopes(record, scope)
    return " ".join(scopes)


async def refused_within(
    seconds: float, attempt: Callable[[], Awaitable[Any]], error: str
) -> float:
    """How long until `attempt` fails with the OAuth error; fails the test after `seconds`."""
    started = time.monotonic()
    while True:
        try:
            await attempt()
        except TokenError as refused:
            if refused.error != error:
                raise
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, f"still served after {seconds} s"
        await asyncio.sleep(0.005)


async def refused_everywhere(
    services: tuple[TokenService, ...], client: dict[str, Any], error: str, scope: str | None = None
) -> None:
    """Every process refuses the client within a second of the change just made."""
    changed = time.monotonic()
    for service in services:
        left = 1.0 - (time.monotonic() - changed)
        await refused_within(left, lambda service=service: exchange(service, client, scope), error)


async def unknown_guesses(service: TokenService, address: str, count: int = 51) -> list[int]:
    """The statuses of `count` authentications with client ids nobody has, from `address`."""
    statuses = []
    for attempt in range(count):
        with pytest.raises(TokenError) as refused:
            await service.authenticate(f"guess-{attempt}", "wrong", address)
        statuses.append(refused.value.status)
    return statuses


async def blocked_guess(service: TokenService, address: str) -> None:
    """Raise only once `service` refuses unknown client ids from `address` with a 429 (a
    plain 400 means it has not heard of the block yet)."""
    try:
        await service.authenticate("guess-again", "wrong", address)
    except TokenError as refused:
        if refused.status == 429:
            raise


def counting_loads(service: TokenService) -> list[str]:
    loads: list[str] = []
    load = service.clients._load

    async def counted(client_id: str) -> ClientRecord | None:
        loads.append(client_id)
        return await load(client_id)

    service.clients._load = counted  # type: ignore[method-assign]
    return loads


async def test_a_client_seen_before_is_served_from_memory(this_process: TokenService) -> None:
    client = await new_client(this_process)
    loads = counting_loads(this_process)
    for _ in range(20):
        assert await exchange(this_process, client) == SCOPE
    assert loads == [client["client_id"]]


async def test_a_new_secret_and_a_new_scope_work_at_once(this_process: TokenService) -> None:
    client = await new_client(this_process)
    await exchange(this_process, client)
    second = "a-brand-new-secret-0123456789"
    await ClientSecret.insert(ClientSecret(client=client["id"], value_hash=secret_hash(second)))
    await ScopeGrant.insert(
        ScopeGrant(client=client["id"], api="leerlingen", institution_number="777777")
    )
    # No waiting for the notification: a refusal from memory is checked against the database.
    new_scope = "api_informat_sas_leerlingen.leerlingen.777777"
    assert await exchange(this_process, {**client, "secret": second}, new_scope) == new_scope


async def test_revocation_reaches_every_process_within_a_second(
    this_process: TokenService, other_process: TokenService
) -> None:
    client = await new_client(this_process, other_process)
    for service in (this_process, other_process):
        await exchange(service, client)
    await ClientSecret.raw(
        "UPDATE client_secret SET revoked_at = now() WHERE id = {}", client["secret_id"]
    )
    await refused_everywhere((this_process, other_process), client, "invalid_client")


async def test_a_removed_scope_and_an_archived_app_reach_every_process_within_a_second(
    this_process: TokenService, other_process: TokenService
) -> None:
    client = await new_client(
        this_process,
        other_process,
        scopes=[("leerlingen", "123456"), ("leerlingen", "654321")],
        application_status="goedgekeurd",
    )
    other_scope = "api_informat_sas_leerlingen.leerlingen.654321"
    for service in (this_process, other_process):
        await exchange(service, client, other_scope)
    await ScopeGrant.raw(
        "DELETE FROM scope_grant WHERE client = {} AND institution_number = '654321'",
        client["id"],
    )
    await refused_everywhere((this_process, other_process), client, "invalid_scope", other_scope)
    for service in (this_process, other_process):
        assert await exchange(service, client) == SCOPE

    await archive(client["application"])
    await refused_everywhere((this_process, other_process), client, "invalid_client")


async def test_without_a_listener_every_request_reads_the_database(
    settings: Settings, committed: None
) -> None:
    service = TokenService(settings)  # never started: nobody listens
    client = await new_client()
    loads = counting_loads(service)
    await exchange(service, client)
    await exchange(service, client)
    assert len(loads) == 2
    await ClientSecret.raw(
        "UPDATE client_secret SET revoked_at = now() WHERE id = {}", client["secret_id"]
    )
    with pytest.raises(TokenError, match="invalid_client"):
        await exchange(service, client)


async def test_a_lost_listener_stops_the_memory_and_comes_back(
    other_process: TokenService,
) -> None:
    client = await new_client(other_process)
    await exchange(other_process, client)
    # The server ends the listening connection, as a restart of PostgreSQL would.
    await ClientSecret.raw(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'portal identity listener' AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 2
    while other_process.clients.fresh:
        assert time.monotonic() < deadline, "a dead listener is noticed"
        await asyncio.sleep(0.01)
    await other_process.clients.caught_up()
    assert await exchange(other_process, client) == SCOPE


async def test_a_change_while_loading_is_not_remembered(this_process: TokenService) -> None:
    client = await new_client(this_process)
    cache = this_process.clients
    load = cache._load

    async def load_then_change(client_id: str) -> ClientRecord | None:
        record = await load(client_id)
        cache.forget(client_id)  # the notification of a change that raced the read
        return record

    cache._load = load_then_change  # type: ignore[method-assign]
    try:
        await exchange(this_process, client)
    finally:
        cache._load = load  # type: ignore[method-assign]
    loads = counting_loads(this_process)
    await exchange(this_process, client)
    assert loads == [client["client_id"]], "the raced read was not kept"


async def test_nothing_read_inside_a_transaction_is_remembered(
    this_process: TokenService,
) -> None:
    client = await new_client(this_process)
    loads = counting_loads(this_process)
    async with DB.transaction():
        await exchange(this_process, client)
        await exchange(this_process, client)
    assert len(loads) == 2


async def test_a_blocked_address_is_refused_by_every_process(
    this_process: TokenService, other_process: TokenService
) -> None:
    client = await new_client(this_process, other_process)
    address = "198.51.100.77"
    # guessing at many client ids from one address
    assert await unknown_guesses(this_process, address) == [400] * 50 + [429]
    await refused_within(1.0, lambda: blocked_guess(other_process, address), "invalid_client")
    # Only unknown client ids are refused: the clients behind that address keep working.
    for service in (this_process, other_process):
        record = await service.authenticate(
            str(client["client_id"]), str(client["secret"]), address
        )
        assert record.client_id == client["client_id"]
    with pytest.raises(TokenError) as wrong_secret:
        await other_process.authenticate(str(client["client_id"]), "wrong", address)
    assert wrong_secret.value.status == 400, "a known client's failures are its own"
    # Another address is not affected.
    with pytest.raises(TokenError) as elsewhere:
        await other_process.authenticate("guess-again", "wrong", "198.51.100.99")
    assert elsewhere.value.status == 400


async def test_an_address_guessing_api_secrets_is_refused_by_every_process(
    this_process: TokenService, other_process: TokenService
) -> None:
    client = await new_client(this_process, other_process)
    address = "198.51.100.78"
    for _ in range(51):  # guessing an API's introspection secret
        with pytest.raises(TokenError):
            await this_process.authenticate_api("api_informat_sas_leerlingen", "geraden", address)
    await refused_within(
        1.0,
        lambda: other_process.authenticate_api(
            "api_informat_sas_leerlingen", INTROSPECTION_SECRET, address
        ),
        "invalid_client",
    )
    with pytest.raises(TokenError) as unknown:
        await other_process.authenticate("guess", "wrong", address)
    assert unknown.value.status == 429, "nor may it guess client ids"
    # A client with its right secret behind that address is not locked out.
    await other_process.authenticate(str(client["client_id"]), str(client["secret"]), address)


async def test_every_client_is_in_memory_once_the_listener_connects(
    settings: Settings, committed: None
) -> None:
    clients = [await make_client() for _ in range(3)]
    service = TokenService(settings)
    service.start()
    try:
        await service.clients.caught_up()
        loads = counting_loads(service)
        for client in clients:
            await exchange(service, client)
        assert loads == [], "served from the memory filled at start"
    finally:
        await service.stop()


async def test_the_least_recently_used_client_is_forgotten_first(
    settings: Settings, committed: None
) -> None:
    small = dataclasses.replace(
        settings, identity=dataclasses.replace(settings.identity, client_memory_size=2)
    )
    service = TokenService(small)
    service.start()
    try:
        await service.clients.caught_up()
        first, second, third = [await new_client(service) for _ in range(3)]
        await exchange(service, first)
        await exchange(service, second)
        await exchange(service, first)  # first is now the most recently used
        await exchange(service, third)  # so second makes room
        loads = counting_loads(service)
        await exchange(service, first)
        await exchange(service, third)
        assert loads == []
        await exchange(service, second)
        assert loads == [second["client_id"]]
        assert len(service.clients) == 2
    finally:
        await service.stop()


async def test_a_client_changed_while_the_memory_fills_is_read_again(
    this_process: TokenService, settings: Settings
) -> None:
    client = await new_client(this_process)
    service = TokenService(settings)
    fill = service.clients._preload
    assert fill is not None

    async def slow_fill(connection: Any, most: int) -> Any:
        loaded = await fill(connection, most)
        # Committed after the fill's snapshot: the notification arrives while it runs.
        await ScopeGrant.delete().where(ScopeGrant.client == client["id"])
        await asyncio.sleep(0.3)
        return loaded

    service.clients._preload = slow_fill
    service.start()
    try:
        await service.clients.caught_up()
        loads = counting_loads(service)
        with pytest.raises(TokenError) as refused:
            await exchange(service, client)
        assert refused.value.error == "invalid_scope", "the stale record was not kept"
        assert loads[0] == client["client_id"], "it was read again"
    finally:
        await service.stop()


async def test_last_use_is_written_for_many_secrets_in_one_statement(
    settings: Settings, committed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.identity import service as identity

    monkeypatch.setattr(identity, "LAST_USED_WRITE_AFTER", 0.1)
    service = TokenService(settings)
    service.start()
    try:
        await service.clients.caught_up()
        clients = [await new_client(service) for _ in range(3)]
        for client in clients:
            await exchange(service, client)
        writer = service._writer
        assert writer is not None
        await writer
        rows = await ClientSecret.select(ClientSecret.last_used_at).where(
            ClientSecret.id.is_in([client["secret_id"] for client in clients])
        )
        assert all(row["last_used_at"] is not None for row in rows) and len(rows) == 3
        # Used again within the minute: nothing more to write.
        await exchange(service, clients[0])
        assert not service._unwritten
    finally:
        await service.stop()


async def test_an_address_of_any_length_is_counted_and_blocked(
    this_process: TokenService, other_process: TokenService
) -> None:
    """A forged X-Forwarded-For of 4,000 characters once passed the counters' index row
    limit, and the token endpoint answered a 500 page instead of invalid_client."""
    address = secrets.token_hex(2000)  # random, so that PostgreSQL cannot compress it
    assert await unknown_guesses(this_process, address) == [400] * 50 + [429]
    await refused_within(1.0, lambda: blocked_guess(other_process, address), "invalid_client")
