"""Error pages: friendly, in the visitor's language, without internals.

A visitor who is not signed in is sent to Aanmelden and brought back afterwards; a form
posted without a valid CSRF token (often an old tab) gets a page that says what to do.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_404_NOT_FOUND,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ASGIApp, Receive, Scope, Send

from app.crypto import SealError
from app.db import UNAVAILABLE
from app.problems import NotFound
from app.web import i18n
from app.web.sessions import ProfileRequired, SessionMiddleware, SignInRequired

log = logging.getLogger("app.errors")
RETRY_AFTER = 5


def _language(request: Request[Any, Any, Any]) -> None:
    settings = request.app.state.settings
    i18n.set_language(i18n.language_for(request.cookies, settings.portal.default_language))


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_page(request: Request[Any, Any, Any], status: int) -> Response[Any]:
    _language(request)
    if _wants_json(request):
        return Response({"status": status}, status_code=status, media_type=MediaType.JSON)
    page = Template(
        "errors/error.html",
        context={"status": status},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )
    # An address no route serves (404, 405) passed no session middleware: look the visitor up
    # first, so that a signed-in partner keeps their own header.
    if "user" in request.scope or status not in (HTTP_404_NOT_FOUND, HTTP_405_METHOD_NOT_ALLOWED):
        return page
    return VisitorFirst(page)


class VisitorFirst(Response[Any]):
    """A page rendered once the visitor's session is known."""

    def __init__(self, page: Template) -> None:
        super().__init__(None, status_code=page.status_code)
        self.page = page

    def to_asgi_response(  # type: ignore[override]
        self, app: Any, request: Request[Any, Any, Any], **options: Any
    ) -> ASGIApp:
        self.page.headers.update(self.headers)  # set on this response by the caller

        async def respond(scope: Scope, receive: Receive, send: Send) -> None:
            with contextlib.suppress(*UNAVAILABLE):
                await SessionMiddleware(request.app.state.settings).identify(request.scope)
            await self.page.to_asgi_response(app, request, **options)(scope, receive, send)

        return respond


def not_authorized(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    if isinstance(exc, ProfileRequired):
        return Redirect("/profiel/kiezen", status_code=303)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    sign_in = exc.sign_in_path if isinstance(exc, SignInRequired) else SignInRequired.sign_in_path
    return Redirect(f"{sign_in}?next={quote(target, safe='')}", status_code=303)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    response = error_page(request, exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """PostgreSQL is down or restarting: say so at once, and when to try again."""
    log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    response = error_page(request, HTTP_503_SERVICE_UNAVAILABLE)
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


def cannot_unseal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """This instance lacks the secret key something was sealed with (a key change half rolled
    out, or a misconfiguration): an operator must act, the visitor can only try again."""
    log.error("cannot open a sealed secret on %s %s: %s", request.method, request.url.path, exc)
    response = error_page(request, HTTP_503_SERVICE_UNAVAILABLE)
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


def server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(request, HTTP_500_INTERNAL_SERVER_ERROR)


def not_found(request: Request[Any, Any, Any], _: NotFound) -> Response[Any]:
    """An id that names nothing this person may see: the ordinary 404 page."""
    return error_page(request, HTTP_404_NOT_FOUND)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    **dict.fromkeys(UNAVAILABLE, unavailable),
    NotFound: not_found,
    SealError: cannot_unseal,
    NotAuthorizedException: not_authorized,
    HTTPException: http_error,
    HTTP_500_INTERNAL_SERVER_ERROR: server_error,
}
