"""Problems every domain can have, below all of them: each is mapped once to its page."""

from __future__ import annotations


class NotFound(Exception):
    """Nothing by this id that the person may see (or nothing at all; the answer is the same):
    the 404 page, wherever a service raises it."""
