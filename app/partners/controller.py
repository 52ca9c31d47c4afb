"""Partner profile pages (manual §3.2) and the public partner pages (manual §3)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from app.applications import service as applications
from app.partners import directory, service
from app.partners.forms import InvitationForm, ProfileForm
from app.throttle import Blocked
from app.web.controllers import NO_STORE, AppSettings, client_address, minutes_to_wait, too_many
from app.web.i18n import _, ngettext
from app.web.render import page, redirect
from app.web.sessions import current_account, requires_account, requires_profile, signed_in

# Logos are up to 1 MB; the body may hold the rest of the form too.
PROFILE_BODY_LIMIT = 3_000_000


def invitation_message(problem: service.InvitationProblem) -> str:
    if problem.reason == "expired":
        return _("This invitation code has expired. Ask a linked colleague for a new code.")
    if problem.reason == "revoked":
        return _("This invitation code was revoked. Ask a linked colleague for a new code.")
    return _("This invitation code is not valid. Check that you pasted the whole code.")


def name_taken_message(name: str) -> str:
    return _("A profile named %(name)s already exists", name=name)


class ProfileController(Controller):
    guards = [requires_account]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/partnerzone", name="partner_home")
    async def partner_home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        account = signed_in(request)
        return redirect(request, "/profiel" if account.partner_id else "/profiel/kiezen")

    @get("/profiel/kiezen", name="profile_choice")
    async def choice(self, request: Request[Any, Any, Any]) -> Response[Any]:
        account = signed_in(request)
        if account.partner_id:
            return redirect(request, "/profiel")
        progress = await applications.progress(account.id)
        return page(request, "partners/choice.html", {"progress": progress})

    @get("/profiel/nieuw", name="profile_new")
    async def new_profile_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        if signed_in(request).partner_id:
            return redirect(request, "/profiel")
        return await self._form(request, ProfileForm(), creating=True)

    @post("/profiel/nieuw", request_max_body_size=PROFILE_BODY_LIMIT)
    async def create_profile(self, request: Request[Any, Any, Any]) -> Response[Any]:
        account = signed_in(request)
        form = ProfileForm(await request.form())
        await form.read_logo()
        if not (data := form.validate()):
            return await self._form(request, form, creating=True, status_code=422)
        try:
            await service.create_profile(account.id, account.email, data)
        except service.NameTaken as taken:
            form.add_error("name", name_taken_message(taken.name))
            return await self._form(request, form, creating=True, status_code=422)
        except service.AlreadyLinked:
            return redirect(request, "/profiel")
        return redirect(request, "/profiel?melding=aangemaakt")

    @get("/profiel/bewerken", guards=[requires_profile], name="profile_edit")
    async def edit_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        view = await service.my_profile(signed_in(request).id)
        form = ProfileForm.from_profile(view.profile, view.categories)
        return await self._form(request, form, creating=False, view=view)

    @post("/profiel/bewerken", guards=[requires_profile], request_max_body_size=PROFILE_BODY_LIMIT)
    async def save_profile(
        self, request: Request[Any, Any, Any], settings: AppSettings
    ) -> Response[Any]:
        account = signed_in(request)
        view = await service.my_profile(account.id)
        form = ProfileForm(await request.form(), logo_required=False)
        await form.read_logo()
        if not (data := form.validate()):
            return await self._form(request, form, creating=False, view=view, status_code=422)
        try:
            changes = await service.update_profile(account.id, account.email, data, settings)
        except service.NameTaken as taken:
            form.add_error("name", name_taken_message(taken.name))
            return await self._form(request, form, creating=False, view=view, status_code=422)
        return redirect(request, "/profiel?melding=" + ("opgeslagen" if changes else "ongewijzigd"))

    async def _form(
        self,
        request: Request[Any, Any, Any],
        form: ProfileForm,
        *,
        creating: bool,
        view: service.ProfileView | None = None,
        status_code: int = 200,
    ) -> Response[Any]:
        account = signed_in(request)
        return page(
            request,
            "partners/profile_form.html",
            {
                "form": form,
                "creating": creating,
                "categories": await service.all_categories(),
                "email": view.profile.email if view else account.email,
                "profile": view.profile if view else None,
            },
            status_code=status_code,
        )

    @get("/profiel/koppelen", name="profile_link")
    async def link_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        if signed_in(request).partner_id:
            return redirect(request, "/profiel")
        return page(request, "partners/link.html", {"form": InvitationForm()})

    @post("/profiel/koppelen")
    async def link(self, request: Request[Any, Any, Any], settings: AppSettings) -> Response[Any]:
        account = signed_in(request)
        form = InvitationForm(await request.form())
        if not (code := form.validate()):
            return page(request, "partners/link.html", {"form": form}, status_code=422)
        try:
            await service.link_with_code(account.id, code, client_address(request), settings)
        except service.AlreadyLinked:
            form.add_error(
                "code",
                _(
                    "Your account is already linked to a partner profile. An"
                    " account can be linked to one profile only."
                ),
            )
            return page(request, "partners/link.html", {"form": form}, status_code=409)
        except service.InvitationProblem as problem:
            form.add_error("code", invitation_message(problem))
            return page(request, "partners/link.html", {"form": form}, status_code=422)
        except Blocked as blocked:
            message = ngettext(
                "Too many wrong codes. Try again in %(num)d minute.",
                "Too many wrong codes. Try again in %(num)d minutes.",
                minutes_to_wait(blocked),
            )
            return too_many(request, "partners/link.html", {"form": form}, message, blocked)
        return redirect(request, "/profiel?melding=gekoppeld")

    @get("/profiel", guards=[requires_profile], name="profile")
    async def profile(
        self, request: Request[Any, Any, Any], melding: FromQuery[str] = ""
    ) -> Response[Any]:
        account = signed_in(request)
        view = await service.my_profile(account.id)
        context = {
            "view": view,
            "message_key": melding,
            "new_code": None,
            "progress": await applications.progress(account.id),
        }
        return page(request, "partners/profile.html", context)

    @post("/profiel/uitnodigingen", guards=[requires_profile])
    async def invite(self, request: Request[Any, Any, Any]) -> Response[Any]:
        account = signed_in(request)
        code = await service.create_invitation(account.id)
        view = await service.my_profile(account.id)
        # The code is shown this once: never cached, never stored in clear.
        return page(
            request,
            "partners/profile.html",
            {"view": view, "message_key": "", "new_code": code},
            status_code=201,
            headers=NO_STORE,
        )

    @post("/profiel/uitnodigingen/{code_id:int}/intrekken", guards=[requires_profile])
    async def revoke(
        self, request: Request[Any, Any, Any], code_id: FromPath[int]
    ) -> Response[Any]:
        await service.revoke_invitation(signed_in(request).id, code_id)
        return redirect(request, "/profiel?melding=ingetrokken#gebruikers")


class PublicPartnerController(Controller):
    @get("/partners/{slug:str}", name="partner_page")
    async def partner_page(
        self, request: Request[Any, Any, Any], slug: FromPath[str]
    ) -> Response[Any]:
        partner = await directory.public_partner(slug)
        if partner is None:
            raise NotFoundException()
        return page(request, "partners/public.html", {"partner": partner})

    @get("/partners/{slug:str}/logo", name="partner_logo")
    async def logo(self, request: Request[Any, Any, Any], slug: FromPath[str]) -> Response[Any]:
        account = current_account(request)
        logo = await service.logo_for(slug, account.id if account else None)
        if logo is None:
            raise NotFoundException()
        etag = f'"{logo.logo_etag}"'
        # A logo of a profile that is not listed is only for that profile's own users.
        caching = "public, max-age=3600" if logo.listed else "private, no-cache"
        headers = {
            "ETag": etag,
            "Cache-Control": caching,
            "Content-Disposition": "inline",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(content=b"", status_code=304, headers=headers)
        return Response(content=logo.logo, media_type=logo.logo_type, headers=headers)
