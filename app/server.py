"""The composition root: every domain's routes, the middleware, templates and lifespan
assembled into one Litestar application. Within `app/`, only `app.create_app` imports it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, asgi
from litestar.datastructures import CacheControlHeader, State
from litestar.di import Provide
from litestar.logging import LoggingConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.static_files import create_static_files_router
from litestar.types import Receive, Scope, Send

from app import db, logs
from app.accounts.controller import AccountController
from app.applications.controller import ApiDocumentationController, ApplicationController
from app.config import Settings, get_settings
from app.crypto import sealer_of
from app.helpdesk.controller import AuditLogController, HelpdeskController
from app.helpdesk.live import QueueFeed
from app.housekeeping import Housekeeper
from app.identity.controller import IdentityController
from app.identity.endpoint import TokenEndpoint
from app.identity.keys import ensure_signing_key
from app.identity.service import TokenService
from app.mail.controller import MailboxController
from app.mail.senders import make_sender
from app.mail.worker import Worker
from app.partners.controller import ProfileController, PublicPartnerController
from app.piccolo_conf import DB
from app.schoolaccess.controller import SchoolAccessController
from app.site.controller import SiteController
from app.staff import sessions as staff_sessions
from app.staff import totp
from app.staff.controller import StaffController, StaffSignInController
from app.web import i18n, inputs
from app.web.csrf import CsrfMiddleware
from app.web.errors import EXCEPTION_HANDLERS
from app.web.security import security_headers_hook
from app.web.sessions import SessionMiddleware
from app.web.sessions import cookie_name as session_cookie
from app.web.templating import ASSETS, make_environment, template_config

log = logging.getLogger(__name__)
FORM_BODY_LIMIT = 256 * 1024


def build(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    if not settings.database.url:
        raise RuntimeError("no database URL: start the portal with `portal serve`")
    db.configure(DB, settings.database.url, settings)
    tokens = TokenService(settings)
    queue_feed = QueueFeed()
    token_endpoint = TokenEndpoint(tokens)

    @asgi(
        "/connect/token",
        name="token",
        is_mount=False,
        copy_scope=False,
        # Client credentials in the request; no cookie is read: no CSRF token, no session.
        opt={"exclude_from_csrf": True, "no_session": True},
    )
    async def token(scope: Scope, receive: Receive, send: Send) -> None:
        await token_endpoint(scope, receive, send)  # type: ignore[arg-type]

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        logs.install()
        await db.start_pool(DB)
        await ensure_signing_key(settings)
        await totp.seal_stored_secrets(sealer_of(settings))
        tokens.start()
        queue_feed.start(settings.database.url)
        jobs: list[tuple[Worker | Housekeeper, asyncio.Task[None]]] = []
        if settings.mail.worker_in_process:
            sender = make_sender(settings)
            for name, job in (
                ("mail-worker", Worker(sender, settings, settings.database.url)),
                ("housekeeping", Housekeeper(sender, settings)),
            ):
                jobs.append((job, asyncio.create_task(job.run(), name=name)))
        try:
            yield
        finally:
            for job, task in jobs:
                job.stop()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=5)
            await queue_feed.stop()
            await tokens.stop()
            await db.close_pool(DB)

    async def before_request(request: Request[Any, Any, Any]) -> None:
        i18n.set_language(i18n.language_for(request.cookies, settings.portal.default_language))
        inputs.check_address(request)

    route_handlers: list[Any] = [
        SiteController,
        AccountController,
        ProfileController,
        PublicPartnerController,
        IdentityController,
        token,
        ApplicationController,
        ApiDocumentationController,
        StaffSignInController,
        StaffController,
        HelpdeskController,
        AuditLogController,
        SchoolAccessController,
        create_static_files_router(
            path="/static",
            directories=[ASSETS],
            cache_control=CacheControlHeader(max_age=31_536_000, public=True),
            include_in_schema=False,
            name="static",
        ),
    ]
    if settings.mail.backend == "mailbox":
        route_handlers.append(MailboxController)

    return Litestar(
        route_handlers=route_handlers,
        lifespan=[lifespan],
        middleware=[
            SessionMiddleware(settings),
            CsrfMiddleware(
                settings, (session_cookie(settings), staff_sessions.cookie_name(settings))
            ),
        ],
        # Handlers and services are given the settings the app was built with, never the
        # global ones: an app built with other settings (as the tests do) keeps to them.
        dependencies={"settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False)},
        before_request=before_request,
        before_send=[security_headers_hook(settings.production)],
        template_config=template_config(make_environment(settings)),
        plugins=[HTMXPlugin()],
        # Forms are small; the routes that take a logo say so themselves. A larger body is
        # refused (413) from its Content-Length, before any of it is read.
        request_max_body_size=FORM_BODY_LIMIT,
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
        state=State({"settings": settings, "tokens": tokens, "queue_feed": queue_feed}),
        logging_config=LoggingConfig(
            root={"level": "INFO", "handlers": ["queue_listener"]},
            log_exceptions="debug",
        ),
        debug=False,
    )
