"""Back-office pages (manual §1.2, §3.3.1): staff sign-in, the helpdesk's live approval queue,
and the staff overview."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage

from app.backoffice import grants, service, sessions, totp
from app.backoffice.forms import CodeForm, EnrolForm, RejectForm, StaffSignInForm
from app.backoffice.live import QueueFeed
from app.backoffice.sessions import requires_helpdesk, requires_school_admin, requires_staff
from app.crypto import Sealer, sealer_of
from app.db import UNAVAILABLE
from app.identity import diagnostics
from app.web.controllers import (
    NO_STORE,
    client_address,
    settings_of,
    too_many,
    too_many_attempts,
)
from app.web.i18n import _, local_time
from app.web.inputs import page_number
from app.web.render import page, redirect, safe_next
from app.web.throttle import Blocked

HOME = "/backoffice"
QUEUE = "/backoffice/wachtrij"
ACCESS = "/backoffice/toegang"
KEEP_ALIVE_SECONDS = 15.0
# How often an open live stream checks that its session still holds, at the least.
SESSION_CHECK_SECONDS = 3.0


def _sealer(state: State) -> Sealer:
    return sealer_of(settings_of(state))


def _chosen(values: list[str]) -> set[tuple[str, str]]:
    """The ticked boxes, each "institution number:api"; anything else is refused."""
    chosen = set()
    for value in values:
        number, separator, api = str(value).partition(":")
        if not separator or not number or not api:
            raise ValueError(value)
        chosen.add((number, api))
    return chosen


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


def _api_labels(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {api.key: api.label for api in settings_of(request.app.state).apis}


def handled_message(handled: service.AlreadyHandled) -> str:
    """Another reviewer was first: who, and what they decided."""
    when = local_time(handled.at) if handled.at else ""
    if handled.status == "goedgekeurd":
        return _("%(who)s already approved this application (%(when)s).", who=handled.by, when=when)
    if handled.status == "geweigerd":
        return _("%(who)s already rejected this application (%(when)s).", who=handled.by, when=when)
    return _("This application is no longer waiting for a decision.")


class BackofficeController(Controller):
    path = HOME
    # Partner sessions mean nothing here; staff sessions are checked by the guards.
    opt = {"no_session": True}  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/aanmelden", name="staff_sign_in")
    async def sign_in_page(
        self,
        request: Request[Any, Any, Any],
        melding: FromQuery[str] = "",
        next: FromQuery[str] = "",
    ) -> Response[Any]:
        form = StaffSignInForm({"next": next})
        return page(
            request,
            "backoffice/sign_in.html",
            {"form": form, "message_key": melding, "staff": None},
        )

    @post("/aanmelden")
    async def sign_in(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        form = StaffSignInForm(await request.form())
        context: dict[str, Any] = {"form": form, "message_key": "", "staff": None}
        if not form.validate():
            return page(request, "backoffice/sign_in.html", context, status_code=422)
        try:
            staff_id = await service.sign_in(
                form.values["username"], form.values["password"], client_address(request)
            )
        except Blocked as blocked:
            return too_many(
                request, "backoffice/sign_in.html", context, too_many_attempts(blocked), blocked
            )
        except service.InvalidCredentials:
            form.add_error("password", _("The username or password is not correct."))
            return page(request, "backoffice/sign_in.html", context, status_code=422)
        settings = settings_of(state)
        previous = request.cookies.get(sessions.cookie_name(settings))
        target = safe_next(form.values["next"], HOME)
        if await totp.enrolled(staff_id):
            response = redirect(request, f"{HOME}/aanmelden/code?next={quote(target, safe='')}")
            await sessions.start(settings, response, staff_id, previous, verified=False)
            return response
        response = redirect(request, target)
        await sessions.start(settings, response, staff_id, previous)
        return response

    @get("/aanmelden/code", name="staff_code")
    async def code_page(
        self, request: Request[Any, Any, Any], state: State, next: FromQuery[str] = ""
    ) -> Response[Any]:
        if await self._waiting(request, state) is None:
            return redirect(request, f"{HOME}/aanmelden")
        return page(
            request,
            "backoffice/code.html",
            {"form": CodeForm({"next": next}), "staff": None},
            headers=NO_STORE,
        )

    @post("/aanmelden/code")
    async def code(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        staff = await self._waiting(request, state)
        if staff is None:
            return redirect(request, f"{HOME}/aanmelden")
        form = CodeForm(await request.form())
        context: dict[str, Any] = {"form": form, "staff": None}
        if not form.validate():
            return page(request, "backoffice/code.html", context, status_code=422)
        try:
            right = await totp.check(staff.id, form.values["code"], _sealer(state))
        except Blocked as blocked:
            return too_many(
                request, "backoffice/code.html", context, too_many_attempts(blocked), blocked
            )
        if not right:
            form.add_error("code", _("This code is not correct. Use the code your app shows now."))
            return page(request, "backoffice/code.html", context, status_code=422)
        settings = settings_of(state)
        response = redirect(request, safe_next(form.values["next"], HOME))
        await sessions.start(
            settings, response, staff.id, request.cookies.get(sessions.cookie_name(settings))
        )
        await service.audit(staff.username, "second-factor")
        return response

    async def _waiting(
        self, request: Request[Any, Any, Any], state: State
    ) -> service.CurrentStaff | None:
        settings = settings_of(state)
        token = request.cookies.get(sessions.cookie_name(settings))
        return await sessions.load(token, settings, waiting_for_code=True) if token else None

    @get("/tweestapsverificatie", guards=[requires_staff], name="second_factor")
    async def second_factor_page(
        self, request: Request[Any, Any, Any], state: State
    ) -> Response[Any]:
        staff = sessions.current(request)
        if await totp.enrolled(staff.id):
            return page(
                request, "backoffice/second_factor.html", {"staff": staff, "enrolled": True}
            )
        secret = await totp.start_enrolment(staff.id, _sealer(state))
        return self._enrolment(request, state, staff, secret or "", EnrolForm())

    @post("/tweestapsverificatie", guards=[requires_staff])
    async def enrol(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        staff = sessions.current(request)
        form = EnrolForm(await request.form())
        secret = await totp.pending_secret(staff.id, _sealer(state))
        if secret is None:
            return redirect(request, f"{HOME}/tweestapsverificatie")
        if not form.validate():
            return self._enrolment(request, state, staff, secret, form, status_code=422)
        try:
            right = await totp.check(staff.id, form.values["code"], _sealer(state), enrolling=True)
        except Blocked as blocked:
            form.add_error("code", too_many_attempts(blocked))
            return self._enrolment(
                request, state, staff, secret, form, status_code=429, retry_after=blocked.seconds
            )
        if not right:
            form.add_error("code", _("This code is not correct. Use the code your app shows now."))
            return self._enrolment(request, state, staff, secret, form, status_code=422)
        await service.audit(staff.username, "second-factor-enrolled")
        return redirect(request, f"{HOME}/tweestapsverificatie")

    def _enrolment(
        self,
        request: Request[Any, Any, Any],
        state: State,
        staff: service.CurrentStaff,
        secret: str,
        form: EnrolForm,
        status_code: int = 200,
        retry_after: int = 0,
    ) -> Response[Any]:
        brand = settings_of(state).portal.brand_name
        return page(
            request,
            "backoffice/second_factor.html",
            {
                "staff": staff,
                "enrolled": False,
                "secret": secret,
                "qr": totp.qr_code(secret, staff.username, f"{brand} back-office"),
                "form": form,
            },
            status_code=status_code,
            # The secret is shown only to whoever is enrolling: not stored by browsers.
            headers={**NO_STORE, "Retry-After": str(retry_after)} if retry_after else NO_STORE,
        )

    @post("/afmelden", guards=[requires_staff])
    async def sign_out(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        response = redirect(request, f"{HOME}/aanmelden?melding=afgemeld")
        await sessions.end(settings_of(state), request, response)
        return response

    @get("/", guards=[requires_staff], name="backoffice_home")
    async def home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        staff = sessions.current(request)
        return redirect(request, QUEUE if staff.helpdesk else ACCESS)

    @get("/wachtrij", guards=[requires_helpdesk], name="queue")
    async def queue(
        self, request: Request[Any, Any, Any], melding: FromQuery[str] = ""
    ) -> Response[Any]:
        notices = {
            "goedgekeurd": _("Approved. The partner can now generate a client secret."),
            "geweigerd": _("Rejected. The partner has been sent the reason."),
        }
        return await self._queue_page(request, notice=notices.get(melding, ""))

    async def _queue_page(
        self,
        request: Request[Any, Any, Any],
        *,
        notice: str = "",
        problem: str = "",
        status_code: int = 200,
    ) -> Response[Any]:
        staff = sessions.current(request)
        applications, waiting = await service.queue(staff)
        return page(
            request,
            "backoffice/queue.html",
            {
                "staff": staff,
                "applications": applications,
                "waiting": waiting,
                "apis": _api_labels(request),
                "message": notice,
                "problem": problem,
            },
            status_code=status_code,
            headers=NO_STORE,
        )

    @get("/wachtrij/live", guards=[requires_helpdesk], name="queue_live")
    async def queue_live(self, request: Request[Any, Any, Any], state: State) -> ServerSentEvent:
        feed: QueueFeed = state.queue_feed
        settings = settings_of(state)
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

    @get("/applicaties/{application_id:uuid}", guards=[requires_helpdesk], name="review")
    async def review(
        self, request: Request[Any, Any, Any], application_id: FromPath[UUID]
    ) -> Response[Any]:
        return await self._review_page(request, application_id)

    async def _review_page(
        self,
        request: Request[Any, Any, Any],
        application_id: UUID,
        *,
        form: RejectForm | None = None,
        problem: str = "",
        status_code: int = 200,
    ) -> Response[Any]:
        staff = sessions.current(request)
        application = await service.review(staff, application_id)
        traffic = (
            await diagnostics.traffic(application["client_pk"], settings_of(request.app.state))
            if application["client_pk"]
            else None
        )
        return page(
            request,
            "backoffice/review.html",
            {
                "staff": staff,
                "application": application,
                "traffic": traffic,
                "apis": _api_labels(request),
                "form": form or RejectForm(),
                "problem": problem,
            },
            status_code=status_code,
            headers=NO_STORE,
        )

    @post("/applicaties/{application_id:uuid}/goedkeuren", guards=[requires_helpdesk])
    async def approve(
        self, request: Request[Any, Any, Any], application_id: FromPath[UUID]
    ) -> Response[Any]:
        staff = sessions.current(request)
        try:
            await service.approve(staff, application_id)
        except service.AlreadyHandled as handled:
            return await self._review_page(
                request, application_id, problem=handled_message(handled), status_code=409
            )
        return redirect(request, f"{QUEUE}?melding=goedgekeurd")

    @post("/applicaties/{application_id:uuid}/weigeren", guards=[requires_helpdesk])
    async def reject(
        self, request: Request[Any, Any, Any], application_id: FromPath[UUID]
    ) -> Response[Any]:
        staff = sessions.current(request)
        form = RejectForm(await request.form())
        if not form.validate():
            return await self._review_page(request, application_id, form=form, status_code=422)
        try:
            await service.reject(staff, application_id, form.values["reason"])
        except service.AlreadyHandled as handled:
            return await self._review_page(
                request,
                application_id,
                form=form,
                problem=handled_message(handled),
                status_code=409,
            )
        return redirect(request, f"{QUEUE}?melding=geweigerd")

    @post("/applicaties/{application_id:uuid}/archiveren", guards=[requires_helpdesk])
    async def archive(
        self, request: Request[Any, Any, Any], application_id: FromPath[UUID]
    ) -> Response[Any]:
        await service.archive_application(sessions.current(request), application_id)
        return redirect(request, f"{HOME}/applicaties/{application_id}")

    @get("/zoeken", guards=[requires_helpdesk], name="search")
    async def search(
        self, request: Request[Any, Any, Any], q: FromQuery[str] = "", status: FromQuery[str] = ""
    ) -> Response[Any]:
        staff = sessions.current(request)
        return page(
            request,
            "backoffice/search.html",
            {
                "staff": staff,
                "q": q,
                "status": status,
                "results": await service.search(staff, q, status),
            },
            headers=NO_STORE,
        )

    @get("/partners/{partner_id:uuid}", guards=[requires_helpdesk], name="partner_detail")
    async def partner(
        self, request: Request[Any, Any, Any], partner_id: FromPath[UUID]
    ) -> Response[Any]:
        staff = sessions.current(request)
        partner = await service.partner_detail(staff, partner_id)
        return page(
            request,
            "backoffice/partner.html",
            {"staff": staff, "partner": partner},
            headers=NO_STORE,
        )

    @post("/partners/{partner_id:uuid}/deactiveren", guards=[requires_helpdesk])
    async def deactivate(
        self, request: Request[Any, Any, Any], partner_id: FromPath[UUID]
    ) -> Response[Any]:
        return await self._set_active(request, partner_id, active=False)

    @post("/partners/{partner_id:uuid}/heractiveren", guards=[requires_helpdesk])
    async def reactivate(
        self, request: Request[Any, Any, Any], partner_id: FromPath[UUID]
    ) -> Response[Any]:
        return await self._set_active(request, partner_id, active=True)

    async def _set_active(
        self, request: Request[Any, Any, Any], partner_id: UUID, *, active: bool
    ) -> Response[Any]:
        await service.set_partner_active(sessions.current(request), partner_id, active)
        return redirect(request, f"{HOME}/partners/{partner_id}")

    @get("/logboek", guards=[requires_staff], name="audit_log")
    async def audit_log(self, request: Request[Any, Any, Any]) -> Response[Any]:
        staff = sessions.current(request)
        return page(
            request,
            "backoffice/audit.html",
            {
                "staff": staff,
                "events": await service.audit_log(staff),
                "apis": _api_labels(request),
                "audit_action": audit_action,
            },
            headers=NO_STORE,
        )

    # School administrators: granting data access (manual §3.4).

    @get("/toegang", guards=[requires_school_admin], name="access_overview")
    async def access_overview(
        self,
        request: Request[Any, Any, Any],
        melding: FromQuery[str] = "",
        pagina: FromQuery[str] = "1",
    ) -> Response[Any]:
        staff = sessions.current(request)
        return page(
            request,
            "backoffice/access.html",
            {
                "staff": staff,
                "result": await grants.overview_page(staff, page_number(pagina)),
                "apis": _api_labels(request),
                "saved": melding == "opgeslagen",
            },
            headers=NO_STORE,
        )

    @get("/toegang.csv", guards=[requires_school_admin], name="access_csv")
    async def access_csv(self, request: Request[Any, Any, Any]) -> Response[str]:
        settings = settings_of(request.app.state)
        rows = await grants.overview(sessions.current(request), settings)
        return Response(
            grants.overview_csv(rows, settings),
            media_type="text/csv; charset=utf-8",
            headers={
                **NO_STORE,
                "Content-Disposition": 'attachment; filename="applicaties-met-toegang.csv"',
            },
        )

    @get("/toegang/{token:str}", guards=[requires_school_admin], name="access_invitation")
    async def invitation(
        self, request: Request[Any, Any, Any], token: FromPath[str]
    ) -> Response[Any]:
        staff = sessions.current(request)
        try:
            view = await grants.open_invitation(staff, token)
        except grants.AccessLinkProblem as problem:
            return self._invitation_problem(request, staff, problem)
        return self._grant_page(request, view, f"{ACCESS}/{token}")

    @post("/toegang/{token:str}", guards=[requires_school_admin])
    async def grant_invited(
        self, request: Request[Any, Any, Any], token: FromPath[str]
    ) -> Response[Any]:
        staff = sessions.current(request)
        form = await request.form()
        try:
            view = await grants.open_invitation(staff, token)
            await grants.save(
                staff,
                view.application["id"],
                _chosen(form.getall("grant", [])),
                token,
                settings_of(request.app.state),
            )
        except grants.AccessLinkProblem as problem:
            return self._invitation_problem(request, staff, problem)
        except (ValueError, service.NotAllowed):
            raise PermissionDeniedException() from None
        return redirect(request, f"{ACCESS}?melding=opgeslagen")

    @get(
        "/toegang/applicaties/{application_id:uuid}",
        guards=[requires_school_admin],
        name="access_application",
    )
    async def access_application(
        self, request: Request[Any, Any, Any], application_id: FromPath[UUID]
    ) -> Response[Any]:
        view = await grants.open_application(sessions.current(request), application_id)
        return self._grant_page(request, view, f"{ACCESS}/applicaties/{application_id}")

    @post("/toegang/applicaties/{application_id:uuid}", guards=[requires_school_admin])
    async def grant_reached(
        self, request: Request[Any, Any, Any], application_id: FromPath[UUID]
    ) -> Response[Any]:
        form = await request.form()
        try:
            await grants.save(
                sessions.current(request),
                application_id,
                _chosen(form.getall("grant", [])),
                None,
                settings_of(request.app.state),
            )
        except (ValueError, service.NotAllowed):
            raise PermissionDeniedException() from None
        return redirect(request, f"{ACCESS}?melding=opgeslagen")

    def _grant_page(
        self, request: Request[Any, Any, Any], view: grants.GrantView, action: str
    ) -> Response[Any]:
        return page(
            request,
            "backoffice/grant.html",
            {
                "staff": sessions.current(request),
                "view": view,
                "application": view.application,
                "apis": _api_labels(request),
                "action": action,
            },
            headers=NO_STORE,
        )

    def _invitation_problem(
        self,
        request: Request[Any, Any, Any],
        staff: service.CurrentStaff,
        problem: grants.AccessLinkProblem,
    ) -> Response[Any]:
        status = {"unknown": 404, "expired": 410, "no-rights": 403}.get(problem.reason, 409)
        return page(
            request,
            "backoffice/invitation_problem.html",
            {"staff": staff, "problem": problem},
            status_code=status,
            headers=NO_STORE,
        )

    @get("/medewerkers", guards=[requires_staff], name="staff_overview")
    async def staff_overview(self, request: Request[Any, Any, Any]) -> Response[Any]:
        staff = sessions.current(request)
        rows = await service.staff_overview()
        if not staff.helpdesk:
            rows = [row for row in rows if row["username"] == staff.username]
        return page(
            request,
            "backoffice/staff.html",
            {"staff": staff, "people": rows, "apis": _api_labels(request)},
        )
