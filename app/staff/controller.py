"""Staff sign-in with its second step, two-step verification, and the staff overview
(manual §1.2). The helpdesk's and the school administrators' rooms have their own."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery

from app.crypto import sealer_of
from app.staff import service, sessions, totp
from app.staff.forms import CodeForm, EnrolForm, StaffSignInForm
from app.staff.sessions import current, requires_staff
from app.throttle import Blocked
from app.web.controllers import NO_STORE, AppSettings, client_address, too_many, too_many_attempts
from app.web.i18n import _
from app.web.render import page, redirect, safe_next

HOME = "/backoffice"
WRONG_CODE = _("This code is not correct. Use the code your app shows now.")


def staff_page(
    request: Request[Any, Any, Any],
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] = NO_STORE,
) -> Response[Any]:
    """A back-office page: the signed-in staff member (for the menu), never stored."""
    context = {"staff": request.scope.get("staff"), **(context or {})}
    return page(request, template, context, status_code=status_code, headers=headers)


class StaffSignInController(Controller):
    path = HOME
    # Partner sessions mean nothing in the back-office; staff sessions are read here.
    opt = {"no_session": True}  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/aanmelden", name="staff_sign_in")
    async def sign_in_page(
        self,
        request: Request[Any, Any, Any],
        melding: FromQuery[str] = "",
        next: FromQuery[str] = "",
    ) -> Response[Any]:
        context = {"form": StaffSignInForm({"next": next}), "message_key": melding}
        return staff_page(request, "staff/sign_in.html", context)

    @post("/aanmelden")
    async def sign_in(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        form = StaffSignInForm(await request.form())
        context: dict[str, Any] = {"form": form, "message_key": "", "staff": None}
        if not (credentials := form.validate()):
            return staff_page(request, "staff/sign_in.html", context, status_code=422)
        try:
            address = client_address(request)
            staff_id = await service.sign_in(credentials.username, credentials.password, address)
        except Blocked as blocked:
            message = too_many_attempts(blocked)
            return too_many(request, "staff/sign_in.html", context, message, blocked)
        except service.InvalidCredentials:
            form.add_error("password", _("The username or password is not correct."))
            return staff_page(request, "staff/sign_in.html", context, status_code=422)
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
        self, request: Request[Any, Any, Any], settings: AppSettings, next: FromQuery[str] = ""
    ) -> Response[Any]:
        if await self._waiting(request, settings) is None:
            return redirect(request, f"{HOME}/aanmelden")
        return staff_page(request, "staff/code.html", {"form": CodeForm({"next": next})})

    @post("/aanmelden/code")
    async def code(self, request: Request[Any, Any, Any], settings: AppSettings) -> Response[Any]:
        staff = await self._waiting(request, settings)
        if staff is None:
            return redirect(request, f"{HOME}/aanmelden")
        form = CodeForm(await request.form())
        context: dict[str, Any] = {"form": form, "staff": None}
        if not (code := form.validate()):
            return staff_page(request, "staff/code.html", context, status_code=422)
        try:
            right = await totp.check(staff.id, code, sealer_of(settings))
        except Blocked as blocked:
            message = too_many_attempts(blocked)
            return too_many(request, "staff/code.html", context, message, blocked)
        if not right:
            form.add_error("code", WRONG_CODE)
            return staff_page(request, "staff/code.html", context, status_code=422)
        response = redirect(request, safe_next(form.values["next"], HOME))
        previous = request.cookies.get(sessions.cookie_name(settings))
        await sessions.start(settings, response, staff.id, previous)
        await service.audit(staff.username, "second-factor")
        return response

    async def _waiting(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> service.CurrentStaff | None:
        token = request.cookies.get(sessions.cookie_name(settings))
        return await sessions.load(token, settings, waiting_for_code=True) if token else None


class StaffController(Controller):
    """What every signed-in staff member has: their second factor, sign-out, the overview."""

    path = HOME
    guards = [requires_staff]  # noqa: RUF012 - Litestar reads it as a class attribute
    opt = {"no_session": True}  # noqa: RUF012

    @get("/", name="backoffice_home")
    async def home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return redirect(
            request, "/backoffice/wachtrij" if current(request).helpdesk else "/backoffice/toegang"
        )

    @get("/tweestapsverificatie", name="second_factor")
    async def second_factor_page(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        staff = current(request)
        if await totp.enrolled(staff.id):
            return staff_page(request, "staff/second_factor.html", {"enrolled": True})
        secret = await totp.start_enrolment(staff.id, sealer_of(settings))
        return self._enrolment(request, settings, secret or "", EnrolForm())

    @post("/tweestapsverificatie")
    async def enrol(self, request: Request[Any, Any, Any], settings: AppSettings) -> Response[Any]:
        staff = current(request)
        form = EnrolForm(await request.form())
        secret = await totp.pending_secret(staff.id, sealer_of(settings))
        if secret is None:
            return redirect(request, f"{HOME}/tweestapsverificatie")
        if not (code := form.validate()):
            return self._enrolment(request, settings, secret, form, status_code=422)
        try:
            right = await totp.check(staff.id, code, sealer_of(settings), enrolling=True)
        except Blocked as blocked:
            form.add_error("code", too_many_attempts(blocked))
            return self._enrolment(
                request, settings, secret, form, status_code=429, retry_after=blocked.seconds
            )
        if not right:
            form.add_error("code", WRONG_CODE)
            return self._enrolment(request, settings, secret, form, status_code=422)
        await service.audit(staff.username, "second-factor-enrolled")
        return redirect(request, f"{HOME}/tweestapsverificatie")

    def _enrolment(
        self,
        request: Request[Any, Any, Any],
        settings: AppSettings,
        secret: str,
        form: EnrolForm,
        status_code: int = 200,
        retry_after: int = 0,
    ) -> Response[Any]:
        label = f"{settings.portal.brand_name} back-office"
        qr = totp.qr_code(secret, current(request).username, label)
        context = {"enrolled": False, "secret": secret, "qr": qr, "form": form}
        # The secret is shown only to whoever is enrolling: not stored by browsers.
        headers = {"Cache-Control": "no-store"}
        if retry_after:
            headers["Retry-After"] = str(retry_after)
        return staff_page(
            request, "staff/second_factor.html", context, status_code=status_code, headers=headers
        )

    @post("/afmelden")
    async def sign_out(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        response = redirect(request, f"{HOME}/aanmelden?melding=afgemeld")
        await sessions.end(settings, request, response)
        return response

    @get("/medewerkers", name="staff_overview")
    async def staff_overview(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        people = await service.staff_overview(current(request))
        context = {"people": people, "apis": settings.api_labels}
        return staff_page(request, "staff/staff.html", context, headers={})
