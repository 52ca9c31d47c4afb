"""The helpdesk's room (manual §3.3.1): the live approval queue, reviewing, search, partners;
and the audit log, which school administrators read for their own schools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.db import UNAVAILABLE
from app.helpdesk import service
from app.helpdesk.forms import STANDARD_REASONS, RejectForm
from app.helpdesk.live import QueueFeed
from app.identity import diagnostics
from app.staff import sessions
from app.staff.controller import staff_page
from app.staff.sessions import current, requires_helpdesk, requires_staff
from app.web.controllers import NO_STORE, AppSettings
from app.web.i18n import _, local_time
from app.web.render import redirect

HOME = "/backoffice"
QUEUE = "/backoffice/wachtrij"
KEEP_ALIVE_SECONDS = 15.0
# How often an open live stream checks that its session still holds, at the least.
SESSION_CHECK_SECONDS = 3.0


def audit_action(action: str) -> str:
    labels = {
        "approved": _("Approved"),
        "rejected": _("Rejected"),
        "archived": _("Archived"),
        "granted": _("Access granted"),
        "removed": _("Access removed"),
        "sign-in": _("Signed in"),
        "deactivated": _("Partner deactivated"),
        "reactivated": _("Partner reactivated"),
        "second-factor": _("Signed in with a code"),
        "second-factor-enrolled": _("Two-step verification turned on"),
    }
    return labels.get(action, action)


def handled_message(handled: service.AlreadyHandled) -> str:
    """Another reviewer was first: who, and what they decided."""
    when = local_time(handled.at) if handled.at else ""
    if handled.status == "goedgekeurd":
        return _("%(who)s already approved this application (%(when)s).", who=handled.by, when=when)
    if handled.status == "geweigerd":
        return _("%(who)s already rejected this application (%(when)s).", who=handled.by, when=when)
    return _("This application is no longer waiting for a decision.")


class HelpdeskController(Controller):
    path = HOME
    guards = [requires_helpdesk]  # noqa: RUF012 - Litestar reads it as a class attribute
    # Partner sessions mean nothing here; staff sessions are checked by the guard.
    opt = {"no_session": True}  # noqa: RUF012

    @get("/wachtrij", name="queue")
    async def queue(
        self, request: Request[Any, Any, Any], settings: AppSettings, melding: FromQuery[str] = ""
    ) -> Response[Any]:
        notices = {
            "goedgekeurd": _("Approved. The partner can now generate a client secret."),
            "geweigerd": _("Rejected. The partner has been sent the reason."),
        }
        applications, waiting = await service.queue(current(request))
        context = {
            "applications": applications,
            "waiting": waiting,
            "apis": settings.api_labels,
            "message": notices.get(melding, ""),
            "problem": "",
        }
        return staff_page(request, "helpdesk/queue.html", context)

    @get("/wachtrij/live", name="queue_live")
    async def queue_live(
        self, request: Request[Any, Any, Any], state: State, settings: AppSettings
    ) -> ServerSentEvent:
        feed: QueueFeed = state.queue_feed
        token = request.cookies.get(sessions.cookie_name(settings), "")

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            async with feed.subscribe() as changes:
                quiet = 0.0
                changed = False
                while True:
                    try:
                        await asyncio.wait_for(changes.get(), timeout=SESSION_CHECK_SECONDS)
                        changed = True
                    except TimeoutError:
                        pass
                    # Checked before every event and every few seconds: a signed-out, expired
                    # or deactivated session gets no more news.
                    try:
                        if await sessions.load(token, settings, touch_it=False) is None:
                            return
                    except UNAVAILABLE:
                        # The database is away: nothing is sent until the session can be
                        # checked again; the news waits (the listener reports its return).
                        continue
                    if changed:
                        changed = False
                        quiet = 0.0
                        yield ServerSentEventMessage(event="queue", data="changed")
                        continue
                    quiet += SESSION_CHECK_SECONDS
                    if quiet >= KEEP_ALIVE_SECONDS:
                        quiet = 0.0
                        yield ServerSentEventMessage(comment="keep-alive")

        # No buffering in a proxy in front, or the news would wait for more to come.
        return ServerSentEvent(events(), headers={**NO_STORE, "X-Accel-Buffering": "no"})

    @get("/applicaties/{application_id:uuid}", name="review")
    async def review(
        self, request: Request[Any, Any, Any], settings: AppSettings, application_id: FromPath[UUID]
    ) -> Response[Any]:
        return await self._review_page(request, settings, application_id)

    async def _review_page(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        application_id: UUID,
        *,
        form: RejectForm | None = None,
        problem: str = "",
        status_code: int = 200,
    ) -> Response[Any]:
        reviewed = await service.review(current(request), application_id)
        application = reviewed.application
        traffic = (
            await diagnostics.traffic(application.client_pk, settings)
            if application.client_pk
            else None
        )
        context = {
            "application": application,
            "partner": reviewed.partner,
            "traffic": traffic,
            "apis": settings.api_labels,
            "form": form or RejectForm(),
            "standard_reasons": STANDARD_REASONS,
            "problem": problem,
        }
        return staff_page(request, "helpdesk/review.html", context, status_code=status_code)

    @post("/applicaties/{application_id:uuid}/goedkeuren")
    async def approve(
        self, request: Request[Any, Any, Any], settings: AppSettings, application_id: FromPath[UUID]
    ) -> Response[Any]:
        try:
            await service.approve(current(request), application_id, settings)
        except service.AlreadyHandled as handled:
            problem = handled_message(handled)
            return await self._review_page(
                request, settings, application_id, problem=problem, status_code=409
            )
        return redirect(request, f"{QUEUE}?melding=goedgekeurd")

    @post("/applicaties/{application_id:uuid}/weigeren")
    async def reject(
        self, request: Request[Any, Any, Any], settings: AppSettings, application_id: FromPath[UUID]
    ) -> Response[Any]:
        form = RejectForm(await request.form())
        if (reason := form.validate()) is None:
            return await self._review_page(
                request, settings, application_id, form=form, status_code=422
            )
        try:
            await service.reject(current(request), application_id, reason, settings)
        except service.AlreadyHandled as handled:
            problem = handled_message(handled)
            return await self._review_page(
                request, settings, application_id, form=form, problem=problem, status_code=409
            )
        return redirect(request, f"{QUEUE}?melding=geweigerd")

    @post("/applicaties/{application_id:uuid}/archiveren")
    async def archive(
        self, request: Request[Any, Any, Any], application_id: FromPath[UUID]
    ) -> Response[Any]:
        await service.archive_application(current(request), application_id)
        return redirect(request, f"{HOME}/applicaties/{application_id}")

    @get("/zoeken", name="search")
    async def search(
        self, request: Request[Any, Any, Any], q: FromQuery[str] = "", status: FromQuery[str] = ""
    ) -> Response[Any]:
        results = await service.search(current(request), q, status)
        context = {"q": q, "status": status, "results": results}
        return staff_page(request, "helpdesk/search.html", context)

    @get("/partners/{partner_id:uuid}", name="partner_detail")
    async def partner(
        self, request: Request[Any, Any, Any], partner_id: FromPath[UUID]
    ) -> Response[Any]:
        partner = await service.partner_detail(current(request), partner_id)
        return staff_page(request, "helpdesk/partner.html", {"partner": partner})

    @post("/partners/{partner_id:uuid}/deactiveren")
    async def deactivate(
        self, request: Request[Any, Any, Any], partner_id: FromPath[UUID]
    ) -> Response[Any]:
        await service.set_partner_active(current(request), partner_id, active=False)
        return redirect(request, f"{HOME}/partners/{partner_id}")

    @post("/partners/{partner_id:uuid}/heractiveren")
    async def reactivate(
        self, request: Request[Any, Any, Any], partner_id: FromPath[UUID]
    ) -> Response[Any]:
        await service.set_partner_active(current(request), partner_id, active=True)
        return redirect(request, f"{HOME}/partners/{partner_id}")


class AuditLogController(Controller):
    path = HOME
    guards = [requires_staff]  # noqa: RUF012 - Litestar reads it as a class attribute
    opt = {"no_session": True}  # noqa: RUF012

    @get("/logboek", name="audit_log")
    async def audit_log(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        context = {
            "events": await service.audit_log(current(request)),
            "apis": settings.api_labels,
            "audit_action": audit_action,
        }
        return staff_page(request, "helpdesk/audit.html", context)
