"""Benchmark: the public directory and partner pages with 5,000 partners.

    uv run python bench/directory.py [--partners 5000] [--requests 300]

Seeds a fresh database (on the embedded PostgreSQL, or the server at DATABASE_URL) with
partners of realistic size, then measures the server time of directory searches (whole
pages and the htmx fragment that search-as-you-type asks for) and of partner pages: the
time from the request entering the application to the last byte of its response, with the
application running in this process. The goal is a p95 under 30 ms for each.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app
from app.config import get_settings
from app.partners.logos import process_logo
from bench.common import ADDRESS, PARTNER_COLUMNS, fresh_database, measure, summary

GOAL_P95_MS = 30.0
WORDS = [
    "leerling",
    "school",
    "rooster",
    "app",
    "data",
    "klas",
    "ouder",
    "planning",
    "evaluatie",
    "rapport",
    "agenda",
    "leerplatform",
    "boekhouding",
    "factuur",
    "personeel",
    "aanwezigheid",
    "communicatie",
    "bericht",
    "inschrijving",
    "toets",
    "portfolio",
    "maaltijd",
    "betaling",
    "sport",
    "bibliotheek",
    "kalender",
]
NAMES = [
    "Edu",
    "Klas",
    "Leer",
    "Rooster",
    "Plan",
    "School",
    "Data",
    "Cloud",
    "Smart",
    "Mentor",
    "Skill",
    "Campus",
    "Digi",
    "Go",
    "Ouder",
    "Toets",
    "Agenda",
    "Info",
    "Link",
    "Pro",
]


def sentence(rng: random.Random, length: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(length)).capitalize() + "."


async def seed(url: str, partners: int) -> list[str]:
    """Insert partners in bulk; returns the slugs of the listed ones."""
    rng = random.Random(7)
    logo = process_logo(_png(), "logo.png", "image/png")
    rows = []
    for number in range(partners):
        name = f"{rng.choice(NAMES)}{rng.choice(NAMES).lower()} {number:05d}"
        rows.append(
            (
                f"partner-{number:05d}",
                name,
                " ".join(sentence(rng, 12) for _ in range(4)),
                f"info{number}@partner.example",
                "Contact Persoon",
                *ADDRESS,
                rng.random() < 0.85,
                rng.random() < 0.95,
                "https://www.example.be",
                sentence(rng, 10),
                logo.data,
                logo.content_type,
                logo.etag,
            )
        )
    connection = await asyncpg.connect(url)
    try:
        await connection.copy_records_to_table(
            "partner",
            records=rows,
            columns=PARTNER_COLUMNS,
        )
        ids = await connection.fetch("SELECT id FROM partner")
        categories = [row["id"] for row in await connection.fetch("SELECT id FROM category")]
        links = {(row["id"], rng.choice(categories)) for row in ids for _ in range(2)}
        await connection.copy_records_to_table(
            "partner_category", records=list(links), columns=["partner", "category"]
        )
        apps = [
            (row["id"], "App", rng.choice(["goedgekeurd", "goedgekeurd", "nieuw"])) for row in ids
        ]
        await connection.copy_records_to_table(
            "application", records=apps, columns=["partner", "name", "status"]
        )
        await connection.execute("ANALYZE")
        listed = await connection.fetch("SELECT slug FROM partner WHERE listed")
    finally:
        await connection.close()
    return [row["slug"] for row in listed]


def _png() -> bytes:
    import io

    from PIL import Image

    output = io.BytesIO()
    Image.new("RGB", (256, 256), "#0b5cad").save(output, format="PNG")
    return output.getvalue()


async def run(url: str, partners: int, count: int) -> int:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    listed = await seed(url, partners)
    settings = get_settings()
    settings = dataclasses.replace(
        settings,
        database=dataclasses.replace(settings.database, url=url),
        mail=dataclasses.replace(settings.mail, worker_in_process=False),
    )
    app: Any = create_app(settings)
    rng = random.Random(11)
    terms = ["leerling", "rooster", "app", "sc", "edu", "planning agenda", "xyz", "Campus"]
    categories = ["", "communiceren", "planning", "hrm"]
    searches = [
        ("/", {"q": rng.choice(terms), "categorie": rng.choice(categories)}) for _ in range(count)
    ]
    pages = [("/", {"pagina": str(rng.randint(1, 40))}) for _ in range(count)]
    partner_pages = [(f"/partners/{rng.choice(listed)}", {}) for _ in range(count)]
    results = []
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await measure(client, searches[:30] + partner_pages[:30])  # warm up
            fragment = {"HX-Request": "true", "HX-Target": "directory"}
            results.append(
                summary(
                    "directory search, htmx fragment",
                    await measure(client, searches, fragment),
                    GOAL_P95_MS,
                )
            )
            results.append(
                summary(
                    "directory search, whole page", await measure(client, searches), GOAL_P95_MS
                )
            )
            results.append(
                summary(
                    "directory pages 1-40, whole page", await measure(client, pages), GOAL_P95_MS
                )
            )
            results.append(
                summary("partner page", await measure(client, partner_pages), GOAL_P95_MS)
            )
    print(f"{partners} partners, {len(listed)} listed; goal p95 < {GOAL_P95_MS:.0f} ms")
    for line, _ in results:
        print(line)
    return 0 if all(p95 < GOAL_P95_MS for _, p95 in results) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300)
    arguments = parser.parse_args()

    with fresh_database("portal_bench") as url:
        return asyncio.run(run(url, arguments.partners, arguments.requests))


if __name__ == "__main__":
    sys.exit(main())
