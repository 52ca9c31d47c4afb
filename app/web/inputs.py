"""Bounds on what a request's address may hold, checked before any handler reads it.

Every page reads its path parameters (slugs, ids) and query parameters (search text, filters,
page numbers) from the address. A NUL there reaches PostgreSQL, which refuses it in text; a
20-digit page number overflows an OFFSET; a slug of thousands of characters is no slug. Rather
than each handler remembering, one hook refuses such an address with the 400 page, so that a
new route is bounded from the start. Form bodies are bounded by the forms (`app.web.forms`).
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.exceptions import ClientException

# Longer than any slug, id or key the portal makes; shorter than anything that hurts.
LONGEST_SEGMENT = 200
LONGEST_QUERY = 2048
LAST_PAGE = 10_000
# C0 and C1 control characters; tab and line breaks have no place in an address either.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class OddAddress(ClientException):
    """A path or query that no page of the portal makes; answered with the 400 page."""


def check_address(request: Request[Any, Any, Any]) -> None:
    path = request.scope["path"]
    if CONTROL.search(path) or any(len(part) > LONGEST_SEGMENT for part in path.split("/")):
        raise OddAddress()
    query = request.scope.get("query_string", b"")
    if len(query) > LONGEST_QUERY:
        raise OddAddress()
    for key, value in request.query_params.items():
        if CONTROL.search(key) or CONTROL.search(value):
            raise OddAddress()


def page_number(text: str) -> int:
    """A page number from the address: digits only, from 1 up to LAST_PAGE (1 otherwise)."""
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > len(str(LAST_PAGE)):
        return 1
    return min(max(int(text), 1), LAST_PAGE)
