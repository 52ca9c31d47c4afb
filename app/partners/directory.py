"""The public partner directory: who integrates with the vendor, and what they do.

Only partners whose profile is active and public and that have at least one approved
application are ever shown, in lists, in search results and on their own page alike; and
only the fields the manual marks as public.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from app.partners.service import LISTED
from app.partners.tables import Partner
from app.web.forms import plain_text
from app.web.i18n import current_language

PER_PAGE = 12
SUMMARY_LENGTH = 220


class Listed(msgspec.Struct, frozen=True):
    """A partner as the directory lists it."""

    slug: str
    name: str
    summary: str
    longer: bool
    logo_etag: str
    categories: list[str]


class PublicPartner(msgspec.Struct, frozen=True):
    """The public fields of a listed partner (those marked * in the manual)."""

    slug: str
    name: str
    description: str
    website: str
    extra_info: str
    logo_etag: str
    categories: list[str]


@dataclass(frozen=True)
class DirectoryPage:
    partners: list[Listed]
    total: int
    page: int
    pages: int


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _names_column() -> str:
    return "c.name_en" if current_language() == "en" else "c.name_nl"


async def search(query: str = "", category: str = "", page: int = 1) -> DirectoryPage:
    """Listed partners matching a search term (name, description) and a category key."""
    query = plain_text(query).strip()[:100]
    conditions = [LISTED]
    arguments: list[Any] = []
    if query:
        conditions.append("p.search_text LIKE {}")
        arguments.append(_like(query.lower()))
    if category:
        conditions.append(
            "EXISTS (SELECT 1 FROM partner_category pc JOIN category k"
            " ON k.id = pc.category WHERE pc.partner = p.id AND k.key = {})"
        )
        arguments.append(category)
    where = " AND ".join(conditions)
    total = await _count(where, arguments)
    pages = max(1, -(-total // PER_PAGE))
    page = min(max(page, 1), pages)
    return DirectoryPage(await _page(where, arguments, page), total, page, pages)


async def _page(where: str, arguments: list[Any], page: int) -> list[Listed]:
    rows = await Partner.raw(
        f"""
        SELECT p.slug, p.name, left(p.description, {SUMMARY_LENGTH}) AS summary,
               length(p.description) > {SUMMARY_LENGTH} AS longer, p.logo_etag,
               {_categories_of("p")} AS categories
        FROM (
            -- The page first, so that the rows it skips cost no category look-ups.
            SELECT p.id, p.slug, p.name, p.name_key, p.description, p.logo_etag
            FROM partner p WHERE {where}
            ORDER BY p.name_key LIMIT {PER_PAGE} OFFSET {(page - 1) * PER_PAGE}
        ) p
        ORDER BY p.name_key
        """,  # noqa: S608 - only constants and placeholders are interpolated
        *arguments,
    )
    return msgspec.convert(rows, list[Listed])


async def _count(where: str, arguments: list[Any]) -> int:
    rows = await Partner.raw(
        f"SELECT count(*) AS n FROM partner p WHERE {where}",  # noqa: S608
        *arguments,
    )
    count: int = rows[0]["n"]
    return count


def _categories_of(alias: str) -> str:
    """The names of a partner's categories, in the current language, as an array."""
    return (
        f"coalesce((SELECT array_agg({_names_column()}::text ORDER BY c.position)"  # noqa: S608
        " FROM partner_category pc JOIN category c ON c.id = pc.category"
        f" WHERE pc.partner = {alias}.id), ARRAY[]::text[])"
    )


async def public_partner(slug: str) -> PublicPartner | None:
    """One listed partner, by its address."""
    rows = await Partner.raw(
        f"""
        SELECT p.slug, p.name, p.description, p.website, p.extra_info, p.logo_etag,
               {_categories_of("p")} AS categories
        FROM partner p WHERE p.slug = {{}} AND {LISTED}
        """,  # noqa: S608 - only constants and placeholders are interpolated
        slug,
    )
    return msgspec.convert(rows[0], PublicPartner) if rows else None
