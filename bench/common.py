"""What the benchmark scripts share: a fresh database, and timing requests in process."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import db
from app.config import PROJECT_ROOT, get_settings
from app.db import EmbeddedPostgres, create_database, drop_database, with_database
from app.piccolo_conf import DB

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
