"""What the benchmark scripts share: a fresh database, and timing requests in process."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import db
from app.config import PROJECT_ROOT, get_settings
from app.db import EmbeddedPostgres, create_database
from app.piccolo_conf import DB
from tests.databases import drop_database, with_database

# A partner row as the benchmarks copy it in: who it is, then its address, then its logo.
PARTNER_COLUMNS = [
    "slug",
    "name",
    "description",
    "email",
    "contact_person",
    "street",
    "house_number",
    "postcode",
    "municipality",
    "country",
    "public",
    "active",
    "website",
    "extra_info",
    "logo",
    "logo_type",
    "logo_etag",
]
ADDRESS = ("Straat", "1", "9000", "Gent", "België")


@contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """A new, migrated database on the embedded PostgreSQL (or the server at DATABASE_URL)."""
    settings = get_settings()
    embedded = None
    if settings.embedded_database:
        embedded = EmbeddedPostgres(PROJECT_ROOT / ".data" / "bench-postgres")
        embedded.start(database="bench_admin")
        admin, url = embedded.url("postgres"), embedded.url(name)
    else:
        admin = with_database(settings.database.url, "postgres")
        url = with_database(settings.database.url, name)
    try:
        asyncio.run(drop_database(admin, name))
        asyncio.run(create_database(admin, name))

        async def migrate() -> None:
            db.configure(DB, url, settings)
            async with db.connected(DB):
                await db.migrate()

        asyncio.run(migrate())
        yield url
    finally:
        if embedded:
            embedded.stop()


async def measure(
    client: httpx.AsyncClient,
    requests: list[tuple[str, dict[str, str]]],
    headers: dict[str, str] | None = None,
) -> list[float]:
    """Milliseconds from request to last byte, each request in turn, app in this process."""
    times = []
    for path, params in requests:
        start = time.perf_counter()
        response = await client.get(path, params=params, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path} {params}: {response.status_code}")
    return times


def summary(name: str, times: list[float], goal_p95_ms: float) -> tuple[str, float]:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    line = (
        f"{name:<44} n={len(times):<4} p50={statistics.median(ordered):6.2f} ms"
        f"  p95={p95:6.2f} ms  p99={p99:6.2f} ms  {'ok' if p95 < goal_p95_ms else 'SLOW'}"
    )
    return line, p95


# A form post for wrk; `delay()` (when set) paces each connection to hold a chosen rate.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = "%s"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""
WRK_DELAY = """
function delay()
   return %d
end
"""


@dataclass(frozen=True)
class Result:
    rate: float
    p50: float
    p99: float
    errors: int
    requests: int = 0


def milliseconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str,
    body: str,
    seconds: float,
    connections: int,
    delay_ms: int | None = None,
    lua: str | None = None,
) -> Result:
    """wrk posting `body` to `url`; with `delay_ms`, each connection waits that long between
    requests, so the load is a steady rate rather than as fast as the server answers. `lua`,
    when given, is wrk's script instead (its own `request()` builds each request)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            lua
            if lua is not None
            else WRK_SCRIPT % body + (WRK_DELAY % delay_ms if delay_ms else "")
        )
    try:
        output = subprocess.run(
            [
                "wrk",
                f"-t{min(2, connections)}",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    percentiles = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", output))
    return Result(
        rate=float(rate.group(1)) if rate else 0.0,
        p50=milliseconds(percentiles["50"]),
        p99=milliseconds(percentiles["99"]),
        errors=(int(errors.group(1)) if errors else 0)
        + (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0),
        requests=int(total.group(1)) if total else 0,
    )
