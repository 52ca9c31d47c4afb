"""What the page controllers share: the settings they were built with, the client's address,
no-store headers, and the answer to a rate-limited form."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency

from app.config import Settings
from app.throttle import Blocked
from app.web.addresses import address_of
from app.web.i18n import ngettext
from app.web.render import page

NO_STORE = {"Cache-Control": "no-store"}
# A handler's `settings`: those the app was built with (the composition root provides them).
AppSettings = NamedDependency[Settings]


def settings_of(state: State) -> Settings:
    """The settings the app was built with (never the global ones inside a request)."""
    settings: Settings = state.settings
    return settings


def client_address(request: Request[Any, Any, Any]) -> str:
    return address_of(request.client)


def minutes_to_wait(blocked: Blocked) -> int:
    return max(1, -(-blocked.seconds // 60))


def too_many(
    request: Request[Any, Any, Any],
    template: str,
    context: dict[str, Any],
    message: str,
    blocked: Blocked,
) -> Response[Any]:
    """The form again, with the rate limit's message at its first field."""
    context["form"].add_error(context["form"].fields[0], message)
    return page(
        request,
        template,
        context,
        status_code=429,
        headers={**NO_STORE, "Retry-After": str(blocked.seconds)},
    )


def too_many_attempts(blocked: Blocked) -> str:
    return ngettext(
        "Too many failed attempts. Try again in %(num)d minute.",
        "Too many failed attempts. Try again in %(num)d minutes.",
        minutes_to_wait(blocked),
    )


def too_many_requests(blocked: Blocked) -> str:
    minutes = minutes_to_wait(blocked)
    return ngettext(
        "Too many requests from your network. Try again in %(num)d minute.",
        "Too many requests from your network. Try again in %(num)d minutes.",
        minutes,
    )
