"""Soak test: a mixed load on two app processes over the back-office's data set.

    uv run python bench/soak.py [--minutes 10] [--token-rate 300] [--page-rate 150]
                                [--users 12] [--report bench/results/soak.md]

Seeds the data set of bench/backoffice.py (3,000 schools, 2,000 partners, 10,000 applications,
1,000,000 scope grants), starts `portal serve --workers 2 --no-access-log`, and for `--minutes`
runs two loads at once:

- partner software asking /connect/token (a client with five schools' scopes) at a steady
  `--token-rate` per second, driven by wrk (Debian's `wrk` package) with paced connections, so
  the token latencies are measured in C rather than through a busy Python event loop;
- `--users` simulated people asking `--page-rate` pages per second between them, each page
  chosen at random:

      58 %  the public directory: search, pages, partner pages
      18 %  a partner editing their application (GET the form, POST it back)
      12 %  the helpdesk's approval queue
      12 %  a school administrator of 50 schools changing one school's access (POST)

It reports throughput, p50 and p99 per route (as the client sees them, loopback included),
errors with their causes, and the resident memory of each worker process every 30 s; growth is
measured from the end of the first minute (warm-up). The report is written as Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.accounts import passwords
from app.identity.service import secret_hash
from bench.backoffice import APIS, PASSWORD, seed
from bench.common import Result, fresh_database, run_wrk
from tests.serving import free_port, portal_serve

CLIENT_ID = "soak_client"
SECRET = "soak-secret-0123456789abcdef"
PARTNER_EMAIL = "soak@partner.example"
WEIGHTS = {"directory": 25, "partner edit": 8, "queue": 6, "admin grant": 6}
TOKEN_CONNECTIONS = 8
TOKEN_BODY = urlencode(
    {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
)


@dataclass
class Tally:
    times: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    # What the failures were (status or exception), so a report says more than a count.
    causes: dict[str, int] = field(default_factory=dict)
    memory: list[tuple[float, list[int]]] = field(default_factory=list)

    def add(self, route: str, seconds: float, ok: bool, cause: str = "") -> None:
        self.times.setdefault(route, []).append(seconds * 1000)
        if not ok:
            self.errors[route] = self.errors.get(route, 0) + 1
            key = f"{route}: {cause}"
            self.causes[key] = self.causes.get(key, 0) + 1


async def prepare(url: str) -> dict[str, str]:
    """The bench data set, plus what the simulated users sign in with."""
    schools = await seed(url)
    connection = await asyncpg.connect(url)
    try:
        client = await connection.fetchrow(
            "SELECT c.id, a.id AS application, a.partner FROM client c"
            " JOIN application a ON a.id = c.application"
            " WHERE a.status = 'goedgekeurd' ORDER BY c.id LIMIT 1"
        )
        await connection.execute(
            "UPDATE client SET client_id = $1 WHERE id = $2", CLIENT_ID, client["id"]
        )
        await connection.execute(
            "INSERT INTO client_secret (client, value_hash) VALUES ($1, $2)",
            client["id"],
            secret_hash(SECRET),
        )
        account = await connection.fetchval(
            "INSERT INTO account (email, password_hash, language, activated_at, partner,"
            " partner_linked_at) VALUES ($1, $2, 'nl', now(), $3, now()) RETURNING id",
            PARTNER_EMAIL,
            passwords.hasher.hash(PASSWORD),
            client["partner"],
        )
        # The administrator's first school reaches the soak client, so it can be adjusted.
        await connection.execute(
            "INSERT INTO scope_grant (client, api, institution_number) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            client["id"],
            "leerlingen",
            schools[0],
        )
        # The seed ran without triggers: derive the directory's flag once.
        await connection.execute("UPDATE partner p SET listed = partner_is_listed(p)")
        slugs = await connection.fetch("SELECT slug FROM partner WHERE listed LIMIT 200")
    finally:
        await connection.close()
    return {
        "application": str(client["application"]),
        "school": schools[0],
        "account": str(account),
        "slugs": " ".join(row["slug"] for row in slugs),
        "schools": " ".join(schools),
    }


async def sign_in(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> None:
    await client.get(path)
    answer = await client.post(path, data={**data, "_csrf_token": client.cookies["csrftoken"]})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in at {path}: {answer.status_code}")
    await client.get(answer.headers["location"])  # the signed-in session's CSRF token


async def user(
    base: str, facts: dict[str, str], tally: Tally, until: float, rng: random.Random, gap: float
) -> None:
    """One person: a page every `gap` seconds on average (a Poisson process), or as fast as
    the answers come when the portal falls behind."""
    limits = httpx.Limits(max_connections=4)
    async with (
        httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as anyone,
        httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as partner,
        httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as desk,
        httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as admin,
    ):
        await sign_in(partner, "/aanmelden", {"email": PARTNER_EMAIL, "password": PASSWORD})
        await sign_in(
            desk, "/backoffice/aanmelden", {"username": "bench.helpdesk", "password": PASSWORD}
        )
        await sign_in(
            admin, "/backoffice/aanmelden", {"username": "bench.admin", "password": PASSWORD}
        )
        slugs = facts["slugs"].split()
        routes = list(WEIGHTS)
        weights = list(WEIGHTS.values())
        granted = True
        next_at = time.monotonic()
        while time.monotonic() < until:
            next_at += rng.expovariate(1 / gap)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            route = rng.choices(routes, weights)[0]
            started = time.perf_counter()
            try:
                if route == "directory":
                    choice = rng.random()
                    if choice < 0.4:
                        answer = await anyone.get(
                            "/", params={"q": rng.choice(["partner", "een", "00"])}
                        )
                    elif choice < 0.7:
                        answer = await anyone.get("/", params={"pagina": str(rng.randint(1, 20))})
                    else:
                        answer = await anyone.get(f"/partners/{rng.choice(slugs)}")
                    ok = answer.status_code == 200
                elif route == "partner edit":
                    path = f"/applicaties/{facts['application']}/bewerken"
                    form = await partner.get(path)
                    answer = await partner.post(
                        path,
                        data={
                            "_csrf_token": partner.cookies["csrftoken"],
                            "name": f"Applicatie soak {rng.randint(1, 999)}",
                            "description": "Omschrijving",
                            "contact_person": "Contact",
                            "contact_email": "dev@partner.example",
                            "apis": APIS,
                        },
                    )
                    ok = form.status_code == 200 and answer.status_code == 303
                elif route == "queue":
                    answer = await desk.get("/backoffice/wachtrij")
                    ok = answer.status_code == 200
                else:
                    granted = not granted
                    chosen = [f"{facts['school']}:leerlingen", f"{facts['school']}:personeel"]
                    answer = await admin.post(
                        f"/backoffice/toegang/applicaties/{facts['application']}",
                        data={
                            "_csrf_token": admin.cookies["csrftoken"],
                            "grant": chosen[: 2 if granted else 1],
                        },
                    )
                    ok = answer.status_code == 303
                cause = str(answer.status_code)
            except httpx.HTTPError as error:
                ok, cause = False, type(error).__name__
            tally.add(route, time.perf_counter() - started, ok, cause)


async def watch_memory(pids: list[int], tally: Tally, until: float, start: float) -> None:
    processes = [psutil.Process(pid) for pid in pids]
    while time.monotonic() < until:
        tally.memory.append(
            (
                time.monotonic() - start,
                [process.memory_info().rss // 2**20 for process in processes],
            )
        )
        await asyncio.sleep(30)


def worker_pids(port: int) -> list[int]:
    pids = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            connections = process.net_connections(kind="tcp")
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
        if any(c.laddr and c.laddr.port == port and c.status == "LISTEN" for c in connections):
            pids.append(process.info["pid"])
    return sorted(pids)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def report(
    tally: Tally, tokens: Result, minutes: float, users: int, token_rate: int, page_rate: int
) -> str:
    seconds = minutes * 60
    total = sum(len(times) for times in tally.times.values()) + tokens.requests
    errors = sum(tally.errors.values()) + tokens.errors
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    lines = [
        f"# Soak test, {dt.date.today().isoformat()}",
        "",
        f"- Machine: {os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total // 2**30} GiB;"
        " load generator, both app processes and PostgreSQL on the same machine.",
        "- Data set: 3,000 schools, 2,000 partners, 10,000 applications, 1,000,000 scope grants"
        " (bench/backoffice.py).",
        f"- Load, for {minutes:g} minutes against `portal serve --workers 2 --no-access-log`:"
        f" wrk asking for tokens at a steady {token_rate} per second ({TOKEN_CONNECTIONS} paced"
        f" connections), and {users} simulated people browsing, editing, reviewing and granting"
        f" at {page_rate} pages per second between them (httpx, one Python process; an edit is"
        " two requests). Latencies are as the client sees them.",
        "",
        f"**{total:,} requests, {total / seconds:.0f} per second, {errors} errors.**",
        "",
        "| route | share | requests/s | p50 | p99 | errors |",
        "|---|---|---|---|---|---|",
        f"| token | {tokens.requests / total:.0%} | {tokens.requests / seconds:.0f}"
        f" | {tokens.p50:.1f} ms | {tokens.p99:.1f} ms | {tokens.errors} |",
    ]
    for route in WEIGHTS:
        times = tally.times.get(route, [])
        if not times:
            continue
        lines.append(
            f"| {route} | {len(times) / total:.0%} | {len(times) / seconds:.0f}"
            f" | {statistics.median(times):.1f} ms | {percentile(times, 0.99):.1f} ms"
            f" | {tally.errors.get(route, 0)} |"
        )
    lines += [
        "",
        "Resident memory per worker process (MiB):",
        "",
        "| minute | "
        + " | ".join(f"worker {n + 1}" for n in range(len(tally.memory[0][1])))
        + " |",
        "|---|" + "---|" * len(tally.memory[0][1]),
    ]
    for seconds, sizes in tally.memory:
        lines.append(f"| {seconds / 60:.1f} | " + " | ".join(str(size) for size in sizes) + " |")
    warm = next((sizes for seconds, sizes in tally.memory if seconds >= 60), tally.memory[0][1])
    last = tally.memory[-1][1]
    growth = [(end - start) / start for start, end in zip(warm, last, strict=True)]
    lines += [
        "",
        "Growth after the first minute: "
        + ", ".join(f"worker {n + 1} {change:+.1%}" for n, change in enumerate(growth))
        + " (goal: under 10 %).",
    ]
    if tally.causes:
        lines.append(
            "Errors by cause: "
            + ", ".join(f"{cause} ×{count}" for cause, count in sorted(tally.causes.items()))
            + "."
        )
    lines.append(
        f"Token endpoint p99 while pages were served: {tokens.p99:.1f} ms (goal: under 50 ms)."
    )
    return "\n".join(lines) + "\n"


async def run(url: str, minutes: float, users: int, token_rate: int, page_rate: int) -> str:
    facts = await prepare(url)
    from app import db
    from app.config import get_settings
    from app.piccolo_conf import DB
    from app.staff.service import add_staff

    db.configure(DB, url, get_settings())
    async with db.connected(DB):
        await add_staff("bench.helpdesk", PASSWORD, "helpdesk", [])
        await add_staff(
            "bench.admin", PASSWORD, "school-admin", [(n, APIS) for n in facts["schools"].split()]
        )
    port = free_port()
    env: dict[str, str | None] = {"DATABASE_URL": url, "PORTAL_MAIL_WORKER_IN_PROCESS": "true"}
    with portal_serve(port, "--workers", "2", "--no-access-log", env=env) as base:
        await asyncio.sleep(2)
        pids = worker_pids(port)
        tally = Tally()
        start = time.monotonic()
        until = start + minutes * 60
        rng = random.Random(3)
        # Each paced connection waits this long between answers; the answer's own time is
        # small next to it, so the rate comes out a little under the one asked for.
        delay_ms = round(1000 * TOKEN_CONNECTIONS / token_rate)
        tokens, *_ = await asyncio.gather(
            asyncio.to_thread(
                run_wrk,
                f"{base}/connect/token",
                TOKEN_BODY,
                minutes * 60,
                TOKEN_CONNECTIONS,
                delay_ms,
            ),
            watch_memory(pids, tally, until, start),
            *(
                user(base, facts, tally, until, random.Random(rng.random()), users / page_rate)
                for _ in range(users)
            ),
        )
        tally.memory.append(
            (
                time.monotonic() - start,
                [psutil.Process(pid).memory_info().rss // 2**20 for pid in pids],
            )
        )
    return report(tally, tokens, minutes, users, token_rate, page_rate)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--token-rate", type=int, default=300, help="token requests per second")
    parser.add_argument("--page-rate", type=int, default=150, help="pages per second")
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--report", type=Path, default=None)
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    with fresh_database("portal_soak") as url:
        text = asyncio.run(
            run(
                url,
                arguments.minutes,
                arguments.users,
                arguments.token_rate,
                arguments.page_rate,
            )
        )
    print(text)
    if arguments.report:
        arguments.report.parent.mkdir(parents=True, exist_ok=True)
        arguments.report.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
